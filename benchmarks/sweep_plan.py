"""A plan-only sweep of 1,000 variants (`archgen summary -m`) vs one `python -c "import tensorflow"`.

    python benchmarks/sweep_plan.py [--quick]
"""

from __future__ import annotations

import shutil
import sys
import tempfile

from common import ROOT, alternate, parse_args, report, run_command


def main() -> None:
    args = parse_args(__doc__)
    archgen = shutil.which("archgen") or sys.exit("archgen is not installed (pip install -e .)")
    variants = 100 if args.quick else 1000
    config = str(ROOT / "conf" / "unet.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        sweep = [archgen, "summary", config, "-m", "-q", f"encoder.filters=range(8,{8 + variants // 2})",
                 "padding=valid,same", f"hydra.sweep.dir={tmp}/sweep"]
        times = alternate({'python -c "import tensorflow"': run_command([sys.executable, "-c", "import tensorflow"]),
                           f"archgen summary -m ({variants} variants)": _allow_failures(sweep)},
                          reps=1 if args.quick else 3)
    med = report("Plan-only sweep vs importing TensorFlow once", times, 'python -c "import tensorflow"')
    per = med[f"archgen summary -m ({variants} variants)"] / variants * 1000
    print(f"  {per:.1f} ms per variant")


def _allow_failures(argv):
    """Half the variants (same padding at 572) are illegal on purpose: exit 1 is expected;
    anything else (a crash) stops the benchmark. Each run gets a fresh sweep folder."""
    import subprocess

    runs = []

    def run():
        runs.append(1)
        result = subprocess.run([*argv[:-1], f"{argv[-1]}{len(runs)}"], cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 1 or "variants failed" not in result.stderr:
            sys.exit(f"the sweep did not run as expected:\n{result.stderr[-2000:]}")

    return run


if __name__ == "__main__":
    main()
