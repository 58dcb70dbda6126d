"""Shared by the benchmark scripts: side-by-side timing and the seed's hand-written U-Net."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_args(doc: str, **extra: dict) -> "argparse.Namespace":
    """``--quick`` (a smoke run) and any ``extra`` options, e.g. ``batch=dict(type=int, default=16)``."""
    import argparse

    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few repetitions")
    for name, kwargs in extra.items():
        parser.add_argument(f"--{name.replace('_', '-')}", **kwargs)
    return parser.parse_args()


def alternate(cases: dict[str, Callable[[], object]], reps: int) -> dict[str, list[float]]:
    """Run each case once per round, alternating, so machine noise hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(reps):
        for name, fn in cases.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def run_command(argv: list[str]) -> Callable[[], None]:
    """A case that runs ``argv`` in a fresh process (cold start), from the repo root."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")

    def run() -> None:
        subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    return run


def report(title: str, times: dict[str, list[float]], baseline: str, unit: str = "s") -> dict[str, float]:
    """Print medians and each case's ratio to ``baseline``; returns the medians."""
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"\n{title}")
    print(f"  {'case':<44} {'median':>10} {'ratio':>8}   runs")
    for name, med in medians.items():
        ratio = med / medians[baseline]
        print(f"  {name:<44} {med:>9.4f}{unit} {ratio:>8.3f}   {len(times[name])}")
    return medians


def find_seed_notebook() -> Path | None:
    """The seed lecture (shared/seed/*.txt) in a folder beside the checkout or above it."""
    env = os.environ.get("ARCHGEN_SEED_DIR")
    dirs = [Path(env)] if env else [p / "shared" / "seed" for p in ROOT.parents]
    for d in dirs:
        files = sorted(d.glob("*.txt")) if d.is_dir() else []
        if files:
            return files[0]
    return None


def seed_unet_source() -> str | None:
    """The seed's hand-written U-Net cell, taken from the lecture text as it stands."""
    path = find_seed_notebook()
    if path is None:
        return None
    match = re.search(r"^inputs = layers\.Input.*?^model = tf\.keras\.Model\(.*?\)$",
                      path.read_text(encoding="utf-8"), re.S | re.M)
    return match.group(0) if match else None


def build_seed_unet(shape: tuple[int, int, int] = (572, 572, 1)):
    """The seed's Keras code run as written, with its input size replaced by ``shape``."""
    import tensorflow as tf
    import tensorflow.keras.layers as layers

    source = seed_unet_source()
    if source is None:
        raise SystemExit("the seed lecture (shared/seed/*.txt) is not beside this checkout; set ARCHGEN_SEED_DIR")
    source = source.replace("shape=(572, 572, 1)", f"shape={tuple(shape)}")
    scope = {"tf": tf, "layers": layers}
    exec(compile(source, "seed-lecture-unet", "exec"), scope)
    return scope["model"]
