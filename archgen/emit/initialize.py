"""Initial weights drawn with NumPy while a model is built on JAX.

On JAX, Keras draws every initial weight with ``jax.random``, which XLA compiles once per
weight shape: about 0.4 s a shape on two cores, 11 of the 12 s it takes to build the original
U-Net (27 compilations). NumPy draws the same distributions with nothing to compile. Only the
back end's three sampling functions are replaced, and only while the model is built: the layers
keep their initializers (the saved file names ``GlorotUniform`` as before), the distributions
are Keras's own (same bounds, same truncation at two standard deviations), and seeds still come
from Keras's seed generators, so ``keras.utils.set_random_seed`` makes builds repeatable.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

_TRUNCATE = 2.0  # jax.random.truncated_normal(lower=-2, upper=2), as Keras's JAX back end calls it


@contextmanager
def numpy_sampling(backend: str) -> Iterator[None]:
    """While building on JAX, sample initial weights with NumPy; elsewhere, do nothing."""
    if backend != "jax":
        yield
        return
    from archgen.compat.keras import jax_samplers_replaced

    # Where Keras moved its back end nothing is replaced: models build as Keras builds them, only slower.
    with jax_samplers_replaced(uniform=_uniform, normal=_normal, truncated_normal=_truncated_normal):
        yield


def _rng(seed) -> np.random.Generator:
    """A NumPy generator seeded from Keras's seed (an int, a SeedGenerator or a JAX key)."""
    import jax

    from archgen.compat.keras import jax_seed_key

    key = jax_seed_key(seed)
    try:
        data = jax.random.key_data(key)
    except (TypeError, ValueError):  # a raw uint32 key array
        data = key
    return np.random.default_rng(np.asarray(data, dtype=np.uint32).ravel().tolist())


def _dtype(dtype):
    import keras

    return np.dtype(dtype or keras.config.floatx())


def _on_device(sample: np.ndarray, dtype):
    # device_put copies without compiling; a NumPy array handed to jnp ops would be staged per shape.
    import jax

    return jax.device_put(sample.astype(_dtype(dtype)))


def _uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    return _on_device(_rng(seed).uniform(minval, maxval, size=tuple(shape)), dtype)


def _normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    return _on_device(_rng(seed).standard_normal(size=tuple(shape)) * stddev + mean, dtype)


def _truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    rng = _rng(seed)
    sample = rng.standard_normal(size=tuple(shape))
    outside = np.abs(sample) > _TRUNCATE
    while outside.any():  # redraw what falls outside: about 4.6% at first, then 4.6% of that
        sample[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = np.abs(sample) > _TRUNCATE
    return _on_device(sample * stddev + mean, dtype)
