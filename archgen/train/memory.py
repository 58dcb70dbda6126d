"""Refuse a training step that cannot fit the memory this machine has free, before Keras builds it.

On the CPU a step past the machine's memory is not an error but the kernel's out-of-memory kill
(or a machine swapping for minutes), with nothing said. archgen's training estimate of the plan
(``archgen summary --fit`` reports the same; the memory profile of the back end on the CPU) is
compared with the memory free once the back end is imported and the data read. On a GPU the
allocator raises its own out-of-memory error, and the host's free memory says nothing of it.
"""

from __future__ import annotations

from archgen.errors import SpecError

DTYPES = {"float32": "float32", "mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}  # train.precision
SLOTS = {"adam": "adam", "adamw": "adam", "sgd": "momentum"}  # train.optimizer.type -> the slots it keeps


def on_accelerator(backend: str) -> bool:
    """Whether the back end (imported) computes on a GPU or TPU rather than this machine's CPU."""
    if backend == "jax":
        import jax

        return jax.devices()[0].platform != "cpu"
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def queued_batches(workers: int) -> int:
    """Batches alive at once beside the step: Keras's queue (``2 * workers``, ``TrainBatches``), one
    being made per worker (with its augmented copy, so two each) and the one being trained on."""
    workers = max(workers, 1)
    return 2 * workers + 2 * workers + 1


def batch_bytes(case, patch, batch_size: int) -> int:
    """What one batch of ``patch`` windows of ``case``'s images and labels takes."""
    voxels = 1
    for n in patch:
        voxels *= n
    per_voxel = case.image.itemsize * case.image.shape[-1]
    per_voxel += case.target.itemsize * (case.target.shape[-1] if case.target.ndim > len(case.spatial) else 1)
    return batch_size * voxels * per_voxel


def check_training_memory(setup, backend: str, sample, free: int | None = None) -> None:
    """``SpecError`` at ``train.batch_size`` where a step's estimate and the batches the input
    pipeline holds (``sample``: a ``Case`` of the data) exceed ``free`` bytes (default: this
    machine's free memory); a step on a GPU is not checked."""
    from archgen.model_file import available_memory
    from archgen.planner.cost import training_bytes
    from archgen.planner.profiles import memory_profile

    if free is None:
        if on_accelerator(backend):
            return
        free = available_memory()
    train = setup.train
    dtype, optimizer = DTYPES[train.precision], SLOTS[train.optimizer.type]
    profile = memory_profile(backend, "cpu")
    held = queued_batches(setup.data.workers)

    def need(batch: int) -> int | None:
        step = training_bytes(setup.plan, batch, dtype, optimizer, profile)
        return None if step is None else step + held * batch_bytes(sample, setup.window.patch, batch)

    asked = need(train.batch_size)
    if asked is None or asked <= free:
        return
    per_sample = need(2) - need(1)  # the estimate is linear in the batch
    largest = min(train.batch_size - 1, max(0, (free - need(1) + per_sample) // per_sample))
    patch = "x".join(str(n) for n in setup.plan.input_shape[:-1])
    what = (f"the largest batch that fits is {largest}" if largest else
            f"not even a batch of 1 fits: train on a smaller patch than {patch} (data.patch_size)")
    raise SpecError(f"a training step of {patch} patches at this batch takes ~{asked / 2**30:,.1f} GiB by archgen's "
                    f"estimate ({train.precision}, {train.optimizer.type}; memory profile {profile.key}; with the "
                    f"{held} batches the input pipeline holds), more than the {free / 2**30:,.1f} GiB this machine "
                    f"has free; {what}", path="train.batch_size", value=train.batch_size)
