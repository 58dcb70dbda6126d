"""Data-parallel training through Keras's own distribution API, where several devices exist.

On the JAX back end, ``train.distribute: auto`` with more than one device (GPUs, TPU cores, or
CPU devices made with ``XLA_FLAGS=--xla_force_host_platform_device_count=N``) lays the model
out with ``keras.distribution.DataParallel``: every device holds the weights and takes
``batch_size / devices`` patches of each batch; Keras splits the batches and combines the
gradients. Keras's distribution API is JAX's only; on TensorFlow and PyTorch a run uses one
device and says so when it sees several GPUs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from archgen.backend import import_keras
from archgen.errors import SpecError


def device_count() -> int:
    """Devices of the back end's default kind (JAX); GPUs for TensorFlow and PyTorch."""
    keras = import_keras()
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return len(jax.devices())
    if backend == "tensorflow":
        import tensorflow as tf

        return max(1, len(tf.config.list_logical_devices("GPU")))
    import torch

    return max(1, torch.cuda.device_count())


@contextmanager
def data_parallel(mode: str, batch_size: int) -> Iterator[int]:
    """Within: the layout models are built with. Yields the number of devices trained on."""
    keras = import_keras()
    count = device_count() if mode == "auto" else 1
    if count <= 1:
        yield 1
        return
    if keras.backend.backend() != "jax":
        print(f"warning: {count} GPUs seen; data-parallel training runs on the JAX back end (Keras's distribution "
              "API), so this run uses one (pass --backend jax to use all)", file=sys.stderr)
        yield 1
        return
    if batch_size % count:
        raise SpecError(f"must be a multiple of the {count} devices it is split over (or train.distribute=off)",
                        path="train.batch_size", value=batch_size)
    import jax

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=jax.devices()))
    try:
        yield count
    finally:
        keras.distribution.set_distribution(previous)
