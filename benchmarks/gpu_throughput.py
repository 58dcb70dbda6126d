"""GPU throughput and peak GPU memory of archgen-built models, on any Keras back end.

Throughput: the seed U-Net (conf/unet.yaml) against the same network written by hand in plain
Keras (tests/reference/seed_unet.py), alternated in one process: inference and a compiled training
step (SGD, XLA where the back end has it), images/s and their ratio (target 1.00 +- 0.03); then
archgen's model in mixed bfloat16 against float32. Achieved TFLOP/s come from the planner's
FLOPs (forward = 2 x multiply-adds, a training step counted as 3 x forward) and MFU against the
GPU's dense peak.

Memory: each case in a fresh process (peaks are per process): the device allocator's peak over
one training step (or one inference) against the planner's estimate (`plan_cost`) by the back
end's GPU memory profile (archgen/planner/profiles.py; provisional, fitted to these same cases on
one H200: a new GPU checks it), and by TensorFlow's CPU constants without their runtime (how far
CPU constants carry to a GPU). benchmarks/calibrate_memory.py --device gpu runs the whole suite.

Runs only where the back end sees a GPU; elsewhere it says so and exits 0.
    KERAS_BACKEND=jax python benchmarks/gpu_throughput.py [--quick] [--json FILE]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from common import ROOT, alternate, build_seed_unet, parse_args, report

# Dense peak TFLOP/s (no sparsity) of the SXM parts, from NVIDIA's H100 / H200 data sheets:
# float32 on CUDA cores, TF32 and bfloat16 on tensor cores.
PEAKS = {"H100": {"float32": 67.0, "tf32": 494.5, "bfloat16": 989.4},
         "H200": {"float32": 67.0, "tf32": 494.5, "bfloat16": 989.4}}

# (config, overrides, batch, mode): the memory cases, one fresh process each.
MEMORY_CASES = [
    ("conf/unet.yaml", [], 1, "train"),
    ("conf/unet.yaml", [], 8, "train"),
    ("conf/unet.yaml", [], 8, "infer"),
    ("conf/unet_same.yaml", [], 8, "train"),
    ("conf/unet3d.yaml", [], 2, "train"),
    ("conf/peers/nnunet_plain_2d.yaml", [], 12, "train"),
]
QUICK_MEMORY_CASES = MEMORY_CASES[:2]
SIZE = 572  # the paper's tile


def backend_name() -> str:
    return os.environ.get("KERAS_BACKEND", "tensorflow")


def gpu_name() -> str | None:
    """The GPU the back end computes on, or None when it has none."""
    backend = backend_name()
    if backend == "jax":
        import jax

        devices = [d for d in jax.devices() if d.platform == "gpu"]
        return devices[0].device_kind if devices else None
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else None


def peak_bytes() -> int:
    """The device allocator's peak since the process started (or since the last reset)."""
    backend = backend_name()
    if backend == "jax":
        import jax

        return jax.devices()[0].memory_stats()["peak_bytes_in_use"]
    if backend == "torch":
        import torch

        return torch.cuda.max_memory_allocated()
    import tensorflow as tf

    return tf.config.experimental.get_memory_info("GPU:0")["peak"]


def make_plan(config: str, overrides: list[str]):
    from archgen.planner import make_plan as plan_of
    from archgen.config import load_spec

    return plan_of(load_spec(ROOT / config, overrides))


def compiled(model, keras):
    model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse", jit_compile=backend_name() != "torch")
    return model


def sample(model, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(batch, *model.input_shape[1:])).astype("float32")
    shapes = model.output_shape if isinstance(model.output_shape, list) else [model.output_shape]
    ys = [rng.normal(size=(batch, *shape[1:])).astype("float32") for shape in shapes]
    return x, ys if len(ys) > 1 else ys[0]


def throughput(args, name: str) -> dict:
    from archgen.backend import import_keras
    from archgen.emit import emit_model

    keras = import_keras()
    peak = next((v for k, v in PEAKS.items() if k in name), None)
    plan = make_plan("conf/unet.yaml", [f"input.shape=[{SIZE},{SIZE},1]"])
    results = {}
    for batch in (args.batch,) if args.quick else (args.batch, 4 * args.batch):
        seed = compiled(build_seed_unet((SIZE, SIZE, 1)), keras)
        ours = compiled(emit_model(plan), keras)
        ours.set_weights(seed.get_weights())
        x, y = sample(ours, batch)
        np.testing.assert_allclose(ours.predict_on_batch(x), seed.predict_on_batch(x), rtol=1e-3, atol=1e-3)
        keras.mixed_precision.set_global_policy("float32")
        half = compiled(emit_model(plan, "mixed_bfloat16"), keras)
        cases = {}
        for label, model in (("seed, hand-written", seed), ("archgen", ours), ("archgen bfloat16", half)):
            model.predict_on_batch(x), model.train_on_batch(x, y)  # compile and warm up
            cases[f"{label}: inference"] = lambda m=model: m.predict_on_batch(x)
            cases[f"{label}: training step"] = lambda m=model: m.train_on_batch(x, y)
        times = alternate(cases, reps=3 if args.quick else 20)
        med = report(f"{name}, {backend_name()}: seed U-Net {SIZE}x{SIZE}x1, batch {batch}", times,
                     "seed, hand-written: inference")
        flops = plan.total_flops * batch
        for kind, factor in (("inference", 1), ("training step", 3)):
            ratio = med[f"seed, hand-written: {kind}"] / med[f"archgen: {kind}"]
            row = {"images_per_s": batch / med[f"archgen: {kind}"],
                   "hand_written_images_per_s": batch / med[f"seed, hand-written: {kind}"],
                   "throughput_ratio": ratio,
                   "bfloat16_images_per_s": batch / med[f"archgen bfloat16: {kind}"]}
            for label, dtype in (("archgen", "tf32"), ("archgen bfloat16", "bfloat16")):
                tflops = factor * flops / med[f"{label}: {kind}"] / 1e12
                row[f"{dtype}_tflops"] = tflops
                row[f"{dtype}_mfu"] = tflops / peak[dtype] if peak else None
            results[f"batch {batch}: {kind}"] = row
            mfu = (f"MFU {row['tf32_mfu']:.1%} of TF32 peak, bf16 {row['bfloat16_mfu']:.1%} of bf16 peak"
                   if peak else "unknown peak")
            print(f"  {kind}: archgen {row['images_per_s']:.1f} images/s, hand-written "
                  f"{row['hand_written_images_per_s']:.1f}, ratio {ratio:.3f} (target 1.00 +- 0.03); "
                  f"bfloat16 {row['bfloat16_images_per_s']:.1f} images/s "
                  f"({row['bfloat16_images_per_s'] / row['images_per_s']:.2f}x); "
                  f"{row['tf32_tflops']:.1f} / {row['bfloat16_tflops']:.1f} TFLOP/s, {mfu}")
        keras.backend.clear_session()
    return results


def child(config: str, overrides: list[str], batch: int, mode: str) -> dict:
    """One memory case, in this (fresh) process: the allocator's peak against the plan's estimate."""
    from archgen.backend import import_keras
    from archgen.emit import emit_model
    from archgen.planner.cost import RUNTIME_BYTES, plan_cost
    from archgen.planner.profiles import memory_profile

    keras = import_keras()
    plan = make_plan(config, overrides)
    cost = plan_cost(plan, batch=batch, optimizer="sgd")
    gpu = plan_cost(plan, batch=batch, optimizer="sgd", profile=memory_profile(backend_name(), "gpu"))
    before = peak_bytes()
    model = compiled(emit_model(plan), keras)
    x, y = sample(model, batch)
    start = time.perf_counter()
    (model.train_on_batch(x, y) if mode == "train" else model.predict_on_batch(x))
    first = time.perf_counter() - start
    cpu_estimate = cost.training_bytes - RUNTIME_BYTES if mode == "train" else cost.inference_peak_bytes
    estimate = gpu.training_bytes if mode == "train" else gpu.inference_peak_bytes
    measured = peak_bytes()
    return {"config": config, "batch": batch, "mode": mode, "profile": gpu.profile, "estimate_bytes": estimate,
            "cpu_constants_estimate_bytes": cpu_estimate, "measured_peak_bytes": measured,
            "before_model_bytes": before, "ratio": estimate / measured,
            "cpu_constants_ratio": cpu_estimate / measured, "first_step_s": first}


def memory(args) -> list[dict]:
    rows = []
    print(f"\npeak GPU memory, {backend_name()}: planner's estimate / allocator's peak (fresh process each)")
    print(f"  {'case':<48} {'estimate':>10} {'measured':>10} {'ratio':>7} {'CPU constants':>13}")
    # Without autotuning: XLA's conv autotuner borrows scratch up to the free memory (16.9 GiB for
    # the seed U-Net at batch 1), which says nothing about the model's own needs.
    env = dict(os.environ, XLA_PYTHON_CLIENT_PREALLOCATE="false", TF_FORCE_GPU_ALLOW_GROWTH="true",
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_gpu_autotune_level=0").strip())
    for config, overrides, batch, mode in QUICK_MEMORY_CASES if args.quick else MEMORY_CASES:
        label = f"{config} batch {batch} {mode}"
        argv = [sys.executable, __file__, "--child", json.dumps([config, overrides, batch, mode])]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode:
            print(f"  {label:<48} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"  {label:<48} {row['estimate_bytes'] / 2**30:9.2f}G {row['measured_peak_bytes'] / 2**30:9.2f}G "
              f"{row['ratio']:7.2f} {row['cpu_constants_ratio']:13.2f}")
    return rows


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(child(*json.loads(sys.argv[2]))))
        return
    args = parse_args(__doc__, batch=dict(type=int, default=8), json=dict(default=None, help="write results here"),
                      memory_only=dict(action="store_true", help="skip the throughput part"))
    name = gpu_name()
    if name is None:
        print(f"no GPU on the {backend_name()} back end: gpu_throughput measures nothing on CPU "
              "(see forward.py for CPU figures)")
        return
    from archgen.backend import select_backend

    select_backend(backend_name())
    results = {"device": name, "backend": backend_name(),
               "throughput": {} if args.memory_only else throughput(args, name), "memory": memory(args)}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
