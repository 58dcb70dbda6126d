"""``archgen train CONFIG --data DIR -o RUN_DIR [OVERRIDES] [--steps N]``: the command line of training.

With ``-m`` it is a sweep: every variant of the overrides trains in a job folder of its own and
the results table ranks them by validation Dice (``archgen.train.sweep``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from archgen.errors import ArchgenError, printable


def add_train_arguments(p: argparse.ArgumentParser, count_arg, max_variants: int) -> None:
    """Add ``archgen train``'s arguments to ``p`` (``count_arg`` checks whole-number options)."""
    p.add_argument("config", help="the YAML file (ending in .yaml), with optional train:, data: and augment: sections")
    p.add_argument("overrides", nargs="*", help="Hydra overrides: key=value, +key=value, ~key")
    p.add_argument("--data", metavar="DIR", help="the data folder: DIR/images/* and DIR/masks/* paired by name "
                                                 "(default: data.dir of the config)")
    p.add_argument("-o", "--output", type=Path, metavar="RUN_DIR",
                   help="the run folder: checkpoints, log.csv, then model.keras, metrics.json, validation.png "
                        "(with -m: the sweep folder)")
    p.add_argument("--steps", type=count_arg("--steps"), metavar="N", help="training steps in all (train.steps)")
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its last checkpoint")
    p.add_argument("--force", action="store_true", help="start over in RUN_DIR, replacing the run's own files")
    p.add_argument("--json", action="store_true", help="print one JSON object (the run's metrics) instead of text")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or epoch lines")
    p.add_argument("--backend", choices=("tensorflow", "jax", "torch"),
                   help="Keras back end (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("-m", "--multirun", action="store_true",
                   help="sweep: train every variant of the overrides, rank them by validation Dice")
    p.add_argument("--max-variants", type=count_arg("--max-variants"), default=max_variants,
                   help=f"refuse a sweep of more variants (default {max_variants:,})")
    p.add_argument("--wide", action="store_true", help="with -m: the table with every column")


def cmd_train(args: argparse.Namespace) -> int:
    if args.multirun:
        from archgen.train.sweep_command import run_train_sweep

        return run_train_sweep(args)
    from archgen.config.load import compose_config
    from archgen.train.session import Request, train_config

    if args.output is None:
        raise ArchgenError("is required: the run folder (checkpoints, model.keras, metrics.json)", path="--output")
    data = compose_config(args.config, args.overrides)
    request = Request(data_dir=args.data, run_dir=args.output, steps=args.steps, resume=args.resume,
                      force=args.force, quiet=args.quiet or args.json, backend=args.backend)
    metrics = train_config(data, request)
    if args.json:
        print(json.dumps({"command": "train", "run_dir": str(args.output), **metrics}, indent=2))
        return 0
    print_run(metrics, args.output)
    return 0


def print_run(metrics: dict[str, Any], run_dir: Path) -> None:
    dice = metrics.get("val_dice")
    loss = metrics.get("val_loss")
    figures = []
    if dice is not None:
        figures.append(f"val_dice {dice:.4f}")
    if loss is not None:
        figures.append(f"val_loss {loss:.4f}")
    best = metrics.get("best_step")
    where = f" (best at step {best:,})" if best is not None else ""
    speed = metrics.get("images_per_second")
    print(f"{printable(metrics['name'])}: {metrics['params']:,} params, {metrics['steps']:,} steps in "
          f"{metrics['seconds']:.1f} s on {metrics['backend']}" + (f" ({speed:,.0f} images/s)" if speed else ""))
    print("  ".join(figures) + where)
    for path in metrics["files"].values():
        print(f"wrote {printable(path)}")
    sys.stdout.flush()
