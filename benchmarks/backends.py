"""Build time and inference throughput of archgen models on each installed Keras back end, as ratios to TensorFlow.

Build time: constructing the seed U-Net (conf/unet.yaml) and the 3D U-Net (conf/unet3d.yaml) in a
fresh process, Keras already imported (the first build of each, as a user meets it).

Each back end runs in its own process (Keras fixes its back end at import); the processes run
one after another in this run, each timing alternating repetitions of the same batch.
    python benchmarks/backends.py [--quick]
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from common import ROOT, parse_args

WORKER = """
import json, statistics, sys, time
import numpy as np
from archgen.backend import import_keras, select_backend
select_backend(sys.argv[1])
keras = import_keras()
from archgen.emit import emit_model
from archgen.planner import make_plan
from archgen.config import load_spec
size, batch, reps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
builds = {}
for conf in ("unet.yaml", "unet3d.yaml"):
    plan = make_plan(load_spec("conf/" + conf))
    start = time.perf_counter()
    emit_model(plan)
    builds[conf] = time.perf_counter() - start
model = emit_model(make_plan(load_spec("conf/unet.yaml", [f"input.shape=[{size},{size},1]"])))
x = np.random.default_rng(0).normal(size=(batch, size, size, 1)).astype("float32")
model.predict_on_batch(x)  # compile / warm up
times = []
for _ in range(reps):
    start = time.perf_counter()
    np.asarray(model.predict_on_batch(x))
    times.append(time.perf_counter() - start)
print(json.dumps({"median": statistics.median(times), "runs": reps, "builds": builds}))
"""


def main() -> None:
    args = parse_args(__doc__)
    size, batch, reps = 188, 2, 3 if args.quick else 15
    backends = [b for b in ("tensorflow", "jax", "torch") if importlib.util.find_spec(b) is not None]
    results = {}
    for backend in backends:
        out = subprocess.run([sys.executable, "-c", WORKER, backend, str(size), str(batch), str(reps)], cwd=ROOT,
                             capture_output=True, text=True)
        if out.returncode:
            print(f"{backend}: failed\n{out.stderr[-1500:]}")
            continue
        results[backend] = json.loads(out.stdout.strip().splitlines()[-1])
    print("\nbuild (first construction in a fresh process, Keras imported), CPU")
    print(f"  {'back end':<12} {'unet.yaml':>10} {'vs tf':>7} {'unet3d.yaml':>12} {'vs tf':>7}")
    tf_builds = results.get("tensorflow", {}).get("builds", {})
    for backend, r in results.items():
        b = r["builds"]
        ratios = [f"{b[c] / tf_builds[c]:.2f}" if c in tf_builds else "-" for c in ("unet.yaml", "unet3d.yaml")]
        print(f"  {backend:<12} {b['unet.yaml']:>9.2f}s {ratios[0]:>7} {b['unet3d.yaml']:>11.2f}s {ratios[1]:>7}")
    print(f"\nseed U-Net {size}x{size}, batch {batch}, inference (predict_on_batch), CPU")
    print(f"  {'back end':<12} {'median':>10} {'images/s':>10} {'vs tensorflow':>14}")
    base = results.get("tensorflow", {}).get("median")
    for backend, r in results.items():
        ratio = f"{base / r['median']:.3f}" if base else "-"
        print(f"  {backend:<12} {r['median']:>9.4f}s {batch / r['median']:>10.2f} {ratio:>14}")


if __name__ == "__main__":
    main()
