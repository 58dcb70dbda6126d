"""Shared by the benchmark scripts: side-by-side timing and the hand-written baseline U-Net."""

from __future__ import annotations

import os
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


def build_seed_unet(shape: tuple[int, int, int] = (572, 572, 1)):
    """The baseline: the original U-Net written by hand in plain Keras, at input size ``shape``."""
    from tests.reference.seed_unet import seed_unet  # imported late: it pulls in Keras

    return seed_unet(shape, num_classes=2)


def rss_status() -> dict[str, int]:
    """This process's resident memory now (``VmRSS``) and at its peak (``VmHWM``), in bytes (Linux)."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) * 1024
    return out


def reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0), so the next peak is this section's."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
