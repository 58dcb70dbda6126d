"""GPU throughput of the padded U-Net (conf/unet_same.yaml) at 512x512: float32, mixed bfloat16, XLA.

Prints images/s, achieved TFLOP/s from the planner's FLOPs (forward 2 x multiply-adds; a training
step counted as 3 x forward), and the fraction of the GPU's peak (MFU). Runs only where a GPU is
present; elsewhere it says so and exits 0.
    python benchmarks/gpu_throughput.py [--quick] [--peak-tflops N]
"""

from __future__ import annotations

import sys

import numpy as np

from common import ROOT, alternate, parse_args, report

# Dense peak TFLOP/s (no sparsity), from NVIDIA's H100 / H200 SXM data sheets.
PEAKS = {"H100": {"float32": 67.0, "mixed_bfloat16": 989.0}, "H200": {"float32": 67.0, "mixed_bfloat16": 989.0}}


def main() -> None:
    args = parse_args(__doc__, batch=dict(type=int, default=16))
    from archgen.backend import import_keras

    import_keras()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        print("no GPU here: gpu_throughput measures nothing on CPU (see forward.py for CPU figures)")
        return
    from archgen.emit import emit_model
    from archgen.planner import make_plan
    from archgen.spec import load_spec

    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
    peak = next((v for k, v in PEAKS.items() if k in name), None)
    plan = make_plan(load_spec(ROOT / "conf" / "unet_same.yaml", ["input.shape=[512,512,1]"]))
    flops = plan.total_flops * args.batch
    x = tf.constant(np.random.default_rng(0).normal(size=(args.batch, 512, 512, 1)).astype("float32"))
    cases = {}
    for precision in ("float32", "mixed_bfloat16"):
        for jit in (False, True):
            model = emit_model(plan, precision)
            label = f"{precision}{' + XLA' if jit else ''}"
            infer = tf.function(lambda x, m=model: m(x, training=False), jit_compile=jit)
            infer(x)
            cases[label] = lambda f=infer: f(x).numpy()
    times = alternate(cases, reps=3 if args.quick else 20)
    med = report(f"{name}: unet_same 512x512x1, batch {args.batch}, inference", times, "float32")
    for label, seconds in med.items():
        tflops = flops / seconds / 1e12
        key = "mixed_bfloat16" if "bfloat16" in label else "float32"
        mfu = f"{tflops / peak[key]:.1%}" if peak else "unknown peak"
        print(f"  {label:<24} {args.batch / seconds:9.1f} images/s {tflops:8.1f} TFLOP/s  MFU {mfu}")


if __name__ == "__main__":
    sys.exit(main())
