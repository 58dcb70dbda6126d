"""``archgen build|summary -m``: check the config and overrides, run every variant, write and show
the results."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Sequence

from archgen.errors import SpecError
from archgen.sweep.expand import expand_variants, swept_keys
from archgen.sweep.launch import hydra_sweep
from archgen.sweep.launchers import check_launchers
from archgen.sweep.options import SweepOptions
from archgen.sweep.plan_only import plan_sweep
from archgen.sweep.progress import SweepProgress
from archgen.sweep.results import print_results, sweep_json, write_results


def run_sweep(command: str, config: str, overrides: Sequence[str], options: SweepOptions | None = None) -> int:
    """Run ``command`` (build or summary) for every variant Hydra's sweeper makes of ``overrides``."""
    from archgen.config.guard import check_mapping
    from archgen.config.load import (check_config_path, check_override_depth, check_override_groups, guard_resolvers,
                                     read_config_file)

    options = options or SweepOptions()
    path = check_config_path(config)
    data = read_config_file(path)
    check_mapping(data, path.parent)
    check_override_depth(overrides)
    check_override_groups(path.parent, overrides)
    check_launchers(path, overrides)
    guard_resolvers()
    overrides, sweep_dir = _sweep_dir(overrides)
    variants = expand_variants(overrides, path.parent, options.max_variants)
    options.swept, fixed = swept_keys(overrides)
    _check_sweep_dir(sweep_dir, options.force)
    with SweepProgress(sweep_dir, None if variants is None else len(variants), options) as progress:
        options.lines = not options.quiet and not progress.shown
        rows = plan_sweep(data, overrides, sweep_dir, options) if command == "summary" else None
        if rows is None:
            rows = hydra_sweep(command, data, path.parent, overrides, variants, sweep_dir, options)
    if command == "train":  # ranked by validation Dice, with its own columns
        from archgen.train.sweep import report_train_sweep

        return report_train_sweep(rows, sweep_dir, options, fixed)
    write_results(sweep_dir, rows, options.swept)
    if options.json:
        print(json.dumps(sweep_json(command, rows, sweep_dir, options.swept, fixed), indent=2))
    else:
        print_results(rows, sweep_dir, options.swept, fixed, options.wide)
    failed = sum(row["status"] != "ok" for row in rows)
    if failed:
        print(f"error: {failed} of {len(rows)} variants failed", file=sys.stderr)
        return 1
    return 0


def _sweep_dir(overrides: Sequence[str]) -> tuple[list[str], Path]:
    # Microseconds: two sweeps started in the same second must not share a folder (hydra #1607).
    sweep_dir = Path("multirun") / datetime.now().strftime("%Y-%m-%d/%H-%M-%S.%f")
    chosen = [o for o in overrides if o.startswith("hydra.sweep.dir=")]
    if chosen:
        sweep_dir = Path(chosen[-1].split("=", 1)[1])
    return [o for o in overrides if not o.startswith("hydra.sweep.dir=")], sweep_dir


def _check_sweep_dir(sweep_dir: Path, force: bool) -> None:
    """A folder holding an earlier sweep's results is never reused silently."""
    if sweep_dir.exists() and not sweep_dir.is_dir():
        raise SpecError("is a file, not a folder", path="hydra.sweep.dir", value=str(sweep_dir))
    if sweep_dir.is_dir() and any(sweep_dir.iterdir()) and not force:
        raise SpecError("already holds files (an earlier sweep?); choose another hydra.sweep.dir, or pass --force "
                        "to write beside them (archgen replaces only its own results)", path="hydra.sweep.dir",
                        value=str(sweep_dir))
    try:
        sweep_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError(f"cannot be created: {exc.strerror}", path="hydra.sweep.dir", value=str(sweep_dir)) from None
    if not os.access(sweep_dir, os.W_OK):
        raise SpecError("is not writable", path="hydra.sweep.dir", value=str(sweep_dir))
