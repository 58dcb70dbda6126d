"""``archgen train ... -m``: the command line's side of a training sweep (``archgen.train.sweep``
ranks and reports its rows; ``archgen.train.variant`` trains each one)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from archgen.errors import ArchgenError


def run_train_sweep(args: argparse.Namespace) -> int:
    from archgen.backend import select_backend
    from archgen.sweep import SweepOptions, run_sweep

    if args.resume:
        raise ArchgenError("continues one run; a sweep trains its variants afresh (rerun one variant with "
                           "archgen train -o SWEEP_DIR/N/run --resume)", path="--resume")
    overrides = list(args.overrides)
    if args.output is not None:
        overrides.append(f"hydra.sweep.dir={args.output}")
    backend = select_backend(args.backend)  # worker processes inherit KERAS_BACKEND; Keras is not imported here
    train = {"data": None if args.data is None else str(Path(args.data).resolve()), "steps": args.steps,
             "backend": backend, "force": args.force, "main_pid": os.getpid()}
    options = SweepOptions(quiet=args.quiet, force=args.force, max_variants=args.max_variants, json=args.json,
                           wide=args.wide, train=train)
    return run_sweep("train", args.config, overrides, options)
