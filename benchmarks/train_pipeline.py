"""Is archgen train's input pipeline the bottleneck? images/s of ``model.fit`` fed by archgen
train's pipeline ÷ ``model.fit`` on the same batches already in memory.

The same compiled network (archgen's, compiled as ``archgen train`` compiles it) is fitted, in
alternating rounds, on archgen train's ``TrainBatches`` (patches cut from a folder's images,
labels cut to the output, normalised, drawn by 2 worker threads; optionally augmented) and on
NumPy arrays of batches drawn from that very pipeline beforehand. Both sides are warm (traced
before the first round), so a ratio near 1 says the pipeline keeps up. Then once ``archgen
train`` itself, end to end: its images/s (metrics.json: training steps only, validation left
out, first step's tracing in) ÷ a fresh network's ``fit`` on arrays over as many steps.

2D 256x256 images, batch 8, a U-Net of depth 4 and 16 filters; on a GPU (when Keras sees one)
batch 32 as well. On CPU, pin 2 cores for the figure the README quotes:
    taskset -c 0,1 python benchmarks/train_pipeline.py [--quick] [--augment]
Target: >= 0.9.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path

from common import ROOT, parse_args

CONFIG = """
name: pipeline_unet
input: {{shape: [{size}, {size}, 1]}}
encoder: {{depth: 4, filters: 16}}
heads: [{{name: logits, filters: 3}}]
data: {{validation: 0.125, workers: 2}}
train: {{batch_size: {batch}, steps: {steps}, steps_per_epoch: {steps}}}
{augment}"""


def main() -> None:
    args = parse_args(__doc__, size={"type": int, "default": 256}, steps={"type": int, "default": 20},
                      rounds={"type": int, "default": 5}, augment={"action": "store_true",
                                                                   "help": "flips and rotations (Keras layers)"})
    from archgen.backend import import_keras

    keras = import_keras()
    gpu = _gpu(keras)
    print(f"back end {keras.backend.backend()}, device {'GPU' if gpu else 'CPU'}, {args.size}x{args.size}, "
          f"augmentation {'flip + rotation' if args.augment else 'none'}")
    steps, rounds = (4, 2) if args.quick else (args.steps, args.rounds)
    with tempfile.TemporaryDirectory(prefix="archgen-pipeline-") as tmp:
        folder = _dataset(Path(tmp), args.size)
        for batch in ([8, 32] if gpu else [8]):
            config = Path(tmp) / f"unet_{batch}.yaml"
            augment = "augment: {flip: true, rotation: 15}" if args.augment else ""
            config.write_text(CONFIG.format(size=args.size, batch=batch, steps=steps, augment=augment))
            alternating(keras, config, folder, steps, rounds, batch)
            end_to_end(keras, config, folder, Path(tmp) / f"run_{batch}", steps, batch)


def _gpu(keras) -> bool:
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend() == "gpu"
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    import torch

    return torch.cuda.is_available()


def _dataset(tmp: Path, size: int) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_shapes", ROOT / "examples" / "train" / "make_shapes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_shapes(tmp / "data", count=16, size=size)


def _setup(config: Path, folder: Path):
    from archgen.config.load import compose_config, validate
    from archgen.train.augment import make_augment
    from archgen.train.pipeline import TrainBatches
    from archgen.train.session import _load_data
    from archgen.train.setup import plan_training

    setup = plan_training(validate(compose_config(config)))
    data = _load_data(setup, folder, "--data")

    def batches(steps: int, epoch: int = 0) -> TrainBatches:
        return TrainBatches(data.train, setup.window, setup.outputs, batch_size=setup.train.batch_size,
                            steps_per_epoch=steps, seed=0, oversampling=setup.data.foreground_oversampling,
                            ndim=setup.ndim, augment=make_augment(setup.augment, setup.ndim), epoch=epoch,
                            workers=setup.data.workers)

    return setup, batches


def _in_memory(pipeline, steps: int):
    import numpy as np

    drawn = [pipeline[i] for i in range(steps)]
    return np.concatenate([x for x, _ in drawn]), np.concatenate([y for _, y in drawn])


def alternating(keras, config: Path, folder: Path, steps: int, rounds: int, batch: int) -> None:
    from archgen.train.loop import build

    setup, batches = _setup(config, folder)
    model = build(setup)
    x, y = _in_memory(batches(steps, epoch=99), steps)
    model.fit(batches(2), epochs=1, steps_per_epoch=2, shuffle=False, verbose=0)  # trace, warm up
    model.fit(x[: 2 * batch], y[: 2 * batch], batch_size=batch, shuffle=False, verbose=0)
    times = {"pipeline": [], "memory": []}
    for r in range(rounds):
        start = time.perf_counter()
        model.fit(batches(steps, epoch=r), epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
        times["pipeline"].append(time.perf_counter() - start)
        start = time.perf_counter()
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
        times["memory"].append(time.perf_counter() - start)
    images = steps * batch
    pipeline, memory = (images / statistics.median(times[k]) for k in ("pipeline", "memory"))
    print(f"\nbatch {batch}, {steps} steps a round, {rounds} rounds alternating (medians)")
    print(f"  model.fit on archgen train's pipeline   {pipeline:8.2f} images/s")
    print(f"  model.fit on the same batches in memory {memory:8.2f} images/s")
    print(f"  ratio {pipeline / memory:.3f} (target >= 0.9)")


def end_to_end(keras, config: Path, folder: Path, run: Path, steps: int, batch: int) -> None:
    from archgen.config.load import compose_config
    from archgen.train.loop import build
    from archgen.train.session import Request, train_config

    metrics = train_config(compose_config(config), Request(data_dir=str(folder), run_dir=run, quiet=True))
    keras.backend.clear_session()
    setup, batches = _setup(config, folder)
    model = build(setup)  # fresh: its first step traces, as archgen train's did
    x, y = _in_memory(batches(steps), steps)
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    memory = steps * batch / (time.perf_counter() - start)
    ours = metrics["images_per_second"]
    print(f"  end to end: archgen train {ours:.2f} images/s (metrics.json), a fresh model.fit on arrays "
          f"{memory:.2f} images/s, ratio {ours / memory:.3f}")
    print(f"  ({json.dumps({k: metrics[k] for k in ('steps', 'seconds', 'val_dice')})})")
    keras.backend.clear_session()


if __name__ == "__main__":
    main()
