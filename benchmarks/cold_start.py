"""Cold process wall time of `archgen summary conf/unet.yaml` vs `python -c "import tensorflow"`.

Alternated, each in a fresh process. Target ratio: <= 0.10.
    python benchmarks/cold_start.py [--quick]
"""

from __future__ import annotations

import shutil
import sys

from common import alternate, parse_args, report, run_command


def main() -> None:
    args = parse_args(__doc__)
    archgen = shutil.which("archgen") or sys.exit("archgen is not installed (pip install -e .)")
    cases = {
        'python -c "import tensorflow"': run_command([sys.executable, "-c", "import tensorflow"]),
        "python -c pass (interpreter start)": run_command([sys.executable, "-c", "pass"]),
        "archgen summary conf/unet.yaml": run_command([archgen, "summary", "conf/unet.yaml"]),
        "archgen summary conf/unet.yaml --json": run_command([archgen, "summary", "conf/unet.yaml", "--json"]),
    }
    times = alternate(cases, reps=2 if args.quick else 10)
    med = report("Cold start, fresh process each", times, 'python -c "import tensorflow"')
    ratio = med["archgen summary conf/unet.yaml"] / med['python -c "import tensorflow"']
    print(f"  ratio summary / import tensorflow: {ratio:.3f} (target <= 0.10)")


if __name__ == "__main__":
    main()
