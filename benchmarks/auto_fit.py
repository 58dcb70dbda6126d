"""What `archgen auto` picks, measured: for a few datasets and budgets, the patch and batch of
``--memory archgen`` (archgen's estimate by the profile of --backend on --device) and of
``--memory nnunet`` (nnU-Net's reference values), and the measured peak of a training step of each
choice, as a share of the budget.

    python benchmarks/auto_fit.py [--backend tensorflow] [--device cpu|gpu] [--quick]

Each choice is the config ``auto -o`` writes (its ``train.batch_size`` the batch it sized), trained
for two steps in a fresh process as ``calibrate_memory.py`` measures (float32, Adam, the defaults
``auto``'s estimate assumes): peak RSS above the baseline on the CPU, the allocator's peak on a GPU.
Printed per dataset and budget: each choice's voxels a step, estimate and measurement as shares of
the budget, and whether nnU-Net's choice fits by measurement, where ``auto``'s default should then
hold at least its patch volume. Results go to ``benchmarks/results/auto_fit_<backend>_<device>_<date>.json``
(not with --quick). No thresholds.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path

from common import ROOT, parse_args

from calibrate_memory import Case, machine, measure

DATASETS = {  # name -> auto's median figures (3 labels, background included)
    "128^3, 1 mm": ["--shape", "128,128,128", "--spacing", "1,1,1"],
    "20x256^2, 5x0.7x0.7 mm": ["--shape", "20,256,256", "--spacing", "5,0.7,0.7"],
    "512^2 2D, 0.5 mm": ["--shape", "512,512", "--spacing", "0.5,0.5"],
}
BUDGETS = {"cpu": ["2GB", "4GB"], "gpu": ["8GB", "24GB"]}  # a CPU step of a 3D network at 4 GB takes ~a minute
QUICK = ("512^2 2D, 0.5 mm", "1GB")


def auto(dataset: list[str], budget: str, memory: str, backend: str, device: str, out: Path) -> dict:
    """Run ``archgen auto`` in this process (it imports no back end): write the config to ``out``;
    return the decisions of the configuration it wrote."""
    from archgen.auto.cli import main

    argv = [*dataset, "--classes", "3", "--fit", budget, "--memory", memory]
    if memory == "archgen":
        argv += ["--backend", backend, "--device", device]
    decisions, said = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(decisions):
        code = main([*argv, "--json"])
    with contextlib.redirect_stdout(said):
        code = code or main([*argv, "-o", str(out), "--force"])
    if code != 0:
        raise RuntimeError(f"archgen auto {' '.join(argv)} failed")
    confs = json.loads(decisions.getvalue())["configurations"]
    return confs["3d_fullres"] if "3d_fullres" in confs else confs["2d"]


def main() -> None:
    args = parse_args(__doc__, backend=dict(choices=("tensorflow", "jax", "torch"), default="tensorflow"),
                      device=dict(choices=("cpu", "gpu"), default="cpu"))
    if args.device == "cpu" and not os.path.exists("/proc/self/clear_refs"):
        print("auto_fit.py reads peak RSS from Linux's /proc/self; not available here")
        return
    if args.device == "gpu":
        probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True) if _has("nvidia-smi") else None
        if probe is None or probe.returncode != 0:
            print("auto_fit.py --device gpu: no GPU here")
            return
    what = "peak RSS above the baseline" if args.device == "cpu" else "the allocator's peak"
    cases = ([QUICK] if args.quick else [(d, b) for d in DATASETS for b in BUDGETS[args.device]])
    print(f"archgen auto's choices (plain, 3 labels), training float32 + Adam on {args.backend}/{args.device}: "
          f"estimate and measured ({what}) as shares of --fit")
    print(f"  {'dataset':<24} {'--fit':>5} {'memory':<8} {'patch x batch':<20} {'voxels/step':>12} "
          f"{'estimate':>9} {'measured':>9}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset, budget in cases:
            budget_bytes = _bytes(budget)
            pair = {}
            for memory in ("archgen", "nnunet"):
                path = Path(tmp) / f"{len(rows)}.yaml"
                conf = auto(DATASETS[dataset], budget, memory, args.backend, args.device, path)
                case = Case(f"{dataset} {budget} {memory}", str(path), (), conf["batch_size"])
                try:
                    measured = measure(args.backend, args.device, case, "train", timeout=1800)["measured"]
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    print(f"  {dataset} {budget} {memory}: failed: {str(exc).strip().splitlines()[-1]}", flush=True)
                    measured = None
                estimate = _estimate(path, conf["batch_size"], args.backend, args.device)
                row = {"dataset": dataset, "budget": budget, "budget_bytes": budget_bytes, "memory": memory,
                       "patch_size": conf["patch_size"], "batch_size": conf["batch_size"],
                       "n_stages": conf["n_stages"], "estimate": estimate, "measured": measured}
                rows.append(row)
                pair[memory] = row
                patch = "x".join(map(str, conf["patch_size"])) + f" x {conf['batch_size']}"
                shown = "-" if measured is None else f"{measured / budget_bytes:.2f}"
                print(f"  {dataset:<24} {budget:>5} {memory:<8} {patch:<20} {_voxels(row):>12,} "
                      f"{estimate / budget_bytes:>9.2f} {shown:>9}", flush=True)
            print("    " + _verdict(pair["archgen"], pair["nnunet"], budget_bytes), flush=True)
    if not args.quick:
        date = datetime.date.today().isoformat()
        out = ROOT / "benchmarks" / "results" / f"auto_fit_{args.backend}_{args.device}_{date}.json"
        with open(out, "w") as f:
            json.dump({"machine": machine(args.backend, args.device), "date": date, "cases": rows}, f, indent=1)
        print(f"  wrote {os.path.relpath(out, ROOT)}")


def _verdict(ours: dict, theirs: dict, budget: int) -> str:
    """Whether nnU-Net's choice fits by measurement, and how archgen's patch compares with it."""
    volume = math.prod(ours["patch_size"]) / math.prod(theirs["patch_size"])
    said = f"archgen's patch holds {volume:.2f}x nnU-Net's voxels, {_voxels(ours) / _voxels(theirs):.2f}x a step"
    if theirs["measured"] is None or ours["measured"] is None:
        return said + "; not measured"
    fits = theirs["measured"] <= budget
    room = "; archgen's fits" if ours["measured"] <= budget else "; archgen's does NOT fit"
    return (f"{said}; nnU-Net's {'fits' if fits else 'does not fit'} by measurement "
            f"({theirs['measured'] / budget:.2f} of the budget){room} ({ours['measured'] / budget:.2f})")


def _voxels(row: dict) -> int:
    return math.prod(row["patch_size"]) * row["batch_size"]


def _estimate(path: Path, batch: int, backend: str, device: str) -> int:
    from archgen.config import load_spec
    from archgen.planner import make_plan
    from archgen.planner.cost import training_bytes
    from archgen.planner.profiles import memory_profile

    return training_bytes(make_plan(load_spec(path, [])), batch, "float32", "adam", memory_profile(backend, device))


def _bytes(budget: str) -> int:
    from archgen.planner.cost import parse_bytes

    return parse_bytes(budget, "--fit", unit_required=True)


def _has(command: str) -> bool:
    import shutil

    return shutil.which(command) is not None


if __name__ == "__main__":
    main()
