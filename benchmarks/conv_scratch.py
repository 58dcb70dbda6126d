"""What one 2D conv takes beyond its input and output on JAX's CPU (XLA), as a ratio to its im2col matrix.

The memory profile of jax/cpu (archgen.planner.profiles) counts an im2col matrix for a valid-padded
2D conv (``valid_im2col``) and nothing for a same-padded one. This measures single convs to show
where that holds: XLA on CPU hands a conv without padding to YNNPACK (a ``__ynn_fusion`` in the
compiled HLO), whose scratch depends on the channels and the image size, and keeps a padded conv
as its own convolution.

Each conv runs in a fresh process: compile and run once, read VmRSS (the baseline), reset VmHWM
(``/proc/self/clear_refs``), run again; scratch = VmHWM - baseline - output bytes.
    python benchmarks/conv_scratch.py [--quick]
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

from common import ROOT, parse_args

WORKER = """
import json, sys
import numpy as np
import jax
batch, size, cin, cout, padding = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
def status(key):
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key + ":"))
conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), padding,
                                                         dimension_numbers=("NHWC", "HWIO", "NHWC")))
rng = np.random.default_rng(0)
x = jax.numpy.asarray(rng.random((batch, size, size, cin), dtype="float32"))
w = jax.numpy.asarray(rng.random((3, 3, cin, cout), dtype="float32"))
ynn = "__ynn_fusion" in conv.lower(x, w).compile().as_text()
conv(x, w).block_until_ready()
base = status("VmRSS")
open("/proc/self/clear_refs", "w").write("5")
y = conv(x, w)
y.block_until_ready()
out = y.size * 4
side = size - 2 if padding == "VALID" else size
print(json.dumps({"scratch": status("VmHWM") - base - out, "im2col": batch * side * side * 9 * cin * 4, "ynn": ynn}))
"""

# (batch, size, input channels, output channels): channels around YNNPACK's changes, and the seed
# U-Net's first level at 572x572 (calibrate_memory.py's seed_2d_572 case).
FULL = [(16, 128, 8, 8), (16, 128, 16, 16), (16, 128, 32, 32), (16, 128, 32, 64), (16, 128, 64, 64),
        (16, 128, 128, 128), (4, 128, 32, 32), (1, 256, 32, 32), (2, 256, 64, 64), (2, 570, 64, 64)]
QUICK = [(4, 96, 16, 16), (4, 96, 32, 32)]


def main() -> None:
    args = parse_args(__doc__)
    if importlib.util.find_spec("jax") is None or not os.path.exists("/proc/self/clear_refs"):
        print("conv_scratch: needs JAX and Linux's /proc/self/clear_refs; skipped")
        return
    print(f"{'batch':>5} {'size':>5} {'in':>4} {'out':>4} {'padding':>7} {'YNNPACK':>7} {'im2col MiB':>10} "
          f"{'scratch MiB':>11} {'/ im2col':>8}")
    for batch, size, cin, cout in QUICK if args.quick else FULL:
        for padding in ("VALID", "SAME"):
            run = subprocess.run([sys.executable, "-c", WORKER, str(batch), str(size), str(cin), str(cout), padding],
                                 cwd=ROOT, capture_output=True, text=True)
            if run.returncode:
                print(f"{batch} {size} {cin} {cout} {padding}: failed\n{run.stderr[-800:]}")
                continue
            r = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{batch:>5} {size:>5} {cin:>4} {cout:>4} {padding.lower():>7} {'yes' if r['ynn'] else 'no':>7} "
                  f"{r['im2col'] / 2**20:>10.0f} {r['scratch'] / 2**20:>11.0f} {r['scratch'] / r['im2col']:>8.2f}")


if __name__ == "__main__":
    main()
