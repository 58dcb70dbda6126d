"""One variant of a training sweep, in whichever process the launcher runs it (see
``archgen.train.sweep`` for devices: a worker that sees several GPUs keeps to one)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def train_variant(data: dict[str, Any], out: Path, options) -> dict[str, Any]:
    """One variant, in whichever process the launcher runs it: its row's figures."""
    from archgen.train.session import Request, train_config

    settings = options.train or {}
    if os.getpid() != settings.get("main_pid"):
        keep_to_one_gpu(int(out.name) if out.name.isdigit() else 0)
    request = Request(data_dir=settings.get("data"), run_dir=out / "run", steps=settings.get("steps"),
                      force=bool(settings.get("force")), quiet=True, backend=settings.get("backend"))
    try:
        metrics = train_config(data, request)
    finally:
        if "keras" in sys.modules:  # the basic launcher trains every variant in this process
            sys.modules["keras"].backend.clear_session()
    return {"val_dice": metrics["val_dice"], "val_loss": metrics["val_loss"], "params": metrics["params"],
            "flops": metrics["flops"], "steps": metrics["steps"], "best_step": metrics["best_step"],
            "train_seconds": metrics["seconds"], "images_per_second": metrics["images_per_second"],
            "devices": metrics["devices"], "run_dir": str(out / "run"), "model": metrics["files"]["keras"]}


def visible_gpus() -> list[str]:
    """The GPUs this process may use, without importing a framework: ``CUDA_VISIBLE_DEVICES``
    where set, else the NVIDIA driver's list."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    try:
        return [str(i) for i in range(len(os.listdir("/proc/driver/nvidia/gpus")))]
    except OSError:
        return []


def keep_to_one_gpu(job: int) -> None:
    """In a worker process that has not imported Keras yet: use one GPU, chosen by ``job``."""
    gpus = visible_gpus()
    if len(gpus) > 1 and "keras" not in sys.modules:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[job % len(gpus)].strip()
