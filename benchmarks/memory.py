"""Peak memory of a real Keras training step and of inference vs the planner's estimate
(archgen/planner/cost.py), CPU, TensorFlow back end.

Each case runs in a fresh subprocess. The child imports numpy, TensorFlow, Keras and archgen
and runs one tiny eager op (so TensorFlow's runtime, thread pools and eager context exist),
then reads VmRSS from /proc/self/status: that is the baseline. It then resets the peak
(VmHWM, by writing 5 to /proc/self/clear_refs), plans and builds the model, makes the input
batch and labels, compiles it with Adam and the head's loss and runs ``train_on_batch`` twice
(training) or ``predict_on_batch`` twice (inference). Measured = VmHWM - baseline: everything
the model, its step and TensorFlow's work on them add to the process (weights, optimizer
state, tracing, activations, allocator slack), but not TensorFlow's import.

    python benchmarks/memory.py [--quick] [--only unet]

The full run prints, per case, the estimate (``plan_cost(...).training_bytes`` or
``.inference_peak_bytes``), the measured peak and their ratio; ``--quick`` (CI) measures one
smaller training case per model. No thresholds: the target is estimate / measured within
1.00 +- 0.20.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from common import ROOT, parse_args, reset_peak_rss, rss_status

MiB = 2**20

# (config, overrides, batches); the full run measures training and inference at each batch.
FULL = [
    ("unet", ["input.shape=[572,572,1]"], (1, 2)),
    ("unet_bn_residual", ["input.shape=[256,256,3]"], (2, 4)),
    ("unet3d", ["input.shape=[116,132,132,3]"], (1, 2)),
]
QUICK = [
    ("unet", ["input.shape=[252,252,1]"], (2,)),
    ("unet_bn_residual", ["input.shape=[128,128,3]"], (2,)),
    ("unet3d", ["input.shape=[92,92,92,1]", "encoder.filters=[16,32,64,128]"], (1,)),
]


def child(config: str, overrides: list[str], batch: int, mode: str, steps: int = 2) -> dict:
    import numpy as np

    from archgen.backend import import_keras

    keras = import_keras()
    import tensorflow as tf

    from archgen.emit import emit_model
    from archgen.planner import make_plan
    from archgen.planner.cost import plan_cost
    from archgen.config import load_spec

    float(tf.reduce_sum(tf.constant([1.0, 2.0]) * 2.0))  # start the runtime
    base = rss_status()["VmRSS"]
    reset_peak_rss()
    tf.config.experimental.reset_memory_stats("CPU:0")

    plan = make_plan(load_spec(ROOT / "conf" / f"{config}.yaml", overrides))
    model = emit_model(plan)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, *plan.input_shape)).astype("float32")
    marks = {"built": rss_status()["VmRSS"] - base}
    if mode == "train":
        (head, name), = plan.outputs.items()
        out = plan.layer(name)
        logits = out.attrs.get("activation", "linear") == "linear"
        if out.shape[-1] == 1:
            y = (rng.random(size=(batch, *out.shape)) > 0.5).astype("float32")
            loss = keras.losses.BinaryCrossentropy(from_logits=logits)
        else:
            y = rng.integers(0, out.shape[-1], size=(batch, *out.shape[:-1])).astype("int32")
            loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss)
        run = lambda: model.train_on_batch(x, y)  # noqa: E731
    else:
        run = lambda: model.predict_on_batch(x)  # noqa: E731
    run()
    s = rss_status()
    marks.update(first_peak=s["VmHWM"] - base, after_first=s["VmRSS"] - base)
    reset_peak_rss()
    for _ in range(steps - 1):
        run()
    s = rss_status()
    marks.update(later_peak=s["VmHWM"] - base)
    info = tf.config.experimental.get_memory_info("CPU:0")  # TensorFlow's allocator: bytes in tensors
    marks.update(tensors_peak=info["peak"], tensors_after=info["current"])
    cost = plan_cost(plan, batch, "float32", "adam")
    estimate = cost.training_bytes if mode == "train" else cost.inference_peak_bytes
    return dict(config=config, overrides=overrides, batch=batch, mode=mode, input=list(plan.input_shape),
                baseline=base, measured=max(marks["first_peak"], marks["later_peak"]), estimate=estimate,
                marks=marks, threads=os.cpu_count())


def measure(config: str, overrides: list[str], batch: int, mode: str) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    argv = [sys.executable, __file__, "--child", json.dumps([config, overrides, batch, mode])]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{config} {mode} batch {batch} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        print(json.dumps(child(*json.loads(sys.argv[2]))))
        return
    if not os.path.exists("/proc/self/clear_refs"):
        print("memory.py reads peak RSS from Linux's /proc/self; not available here")
        return
    args = parse_args(__doc__, only=dict(default=None, help="measure only this config"),
                      json=dict(default=None, help="also write the results to this file"))
    cases = []
    for config, overrides, batches in QUICK if args.quick else FULL:
        if args.only and config != args.only:
            continue
        for mode in ("train",) if args.quick else ("train", "infer"):
            cases += [(config, overrides, b, mode) for b in batches]
    print("Peak memory, estimate (archgen.planner.cost) vs measured (peak RSS above the baseline), "
          "CPU, TensorFlow, float32, Adam")
    print(f"  {'case':<48} {'estimate':>12} {'measured':>12} {'ratio':>7}")
    results = []
    for case in cases:
        r = measure(*case)
        results.append(r)
        shape = "x".join(map(str, r["input"]))
        name = f"{r['config']} {shape} {r['mode']} batch {r['batch']}"
        print(f"  {name:<48} {r['estimate'] / MiB:>8.1f} MiB {r['measured'] / MiB:>8.1f} MiB "
              f"{r['estimate'] / r['measured']:>7.3f}", flush=True)
    base = [r["baseline"] for r in results]
    print(f"  baseline (TensorFlow + Keras + archgen imported, one eager op): "
          f"{min(base) / MiB:.0f}-{max(base) / MiB:.0f} MiB RSS, not counted on either side")
    worst = max(abs(r["estimate"] / r["measured"] - 1) for r in results)
    print(f"  worst |estimate / measured - 1| = {worst:.3f} (target <= 0.20)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
