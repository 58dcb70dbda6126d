"""One variant's job, in whichever process runs it: plan it (and build it), turn any failure into
its row, write ``result.json`` into its folder."""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from archgen.errors import ArchgenError, printable
from archgen.sweep.expand import swept_values
from archgen.sweep.options import SweepOptions

RESULT = "result.json"
STARTED = "started"  # written by a job as it starts: a folder with it and no result was killed


def _env_allowed() -> bool:
    from archgen.config.load import ALLOW_ENV

    return os.environ.get(ALLOW_ENV) == "1"


@dataclass(frozen=True)
class SweepTask:
    """The function Hydra's launcher runs for each variant, holding what the command line asked.
    Launchers pickle it with each job, so it reaches workers that share neither this process's
    memory nor its environment (a Ray cluster's workers were started before the sweep)."""

    command: str
    options: SweepOptions
    allow_env: bool = field(default_factory=_env_allowed)  # oc.env: this command line's choice, not the worker's

    def __call__(self, cfg) -> None:
        from archgen.config.load import ALLOW_ENV

        if self.allow_env:
            os.environ[ALLOW_ENV] = "1"
        else:
            os.environ.pop(ALLOW_ENV, None)
        sweep_job(cfg, self.command, self.options)


def sweep_job(cfg, command: str, options: SweepOptions) -> None:
    """One variant, run by Hydra's launcher (maybe in another process). Never raises."""
    from hydra.core.hydra_config import HydraConfig

    from archgen.config.load import resolve

    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    num = int(out.name) if out.name.isdigit() else hc.job.num
    run_job(num, hc.overrides.task, out, lambda: _run_variant(resolve(cfg), out, command, options),
            not options.lines, options.swept)


def run_job(num: int, overrides: Sequence[str], out: Path, work: Callable[[], dict[str, Any]],
            quiet: bool, swept: Sequence[str] = (), *, files: bool = True) -> dict[str, Any]:
    """Run one variant's ``work``, turning any failure into the row's status; report the row, and
    with ``files`` write it into the job's folder ``out``."""
    row: dict[str, Any] = {"job": num, "overrides": " ".join(o.lstrip("+") for o in overrides),
                           "swept": swept_values(overrides, swept), "status": "ok"}
    if files:
        out.mkdir(parents=True, exist_ok=True)
        (out / STARTED).write_text(f"{os.getpid()}\n")  # which process ran it: a killed job is told apart
    start = time.perf_counter()
    try:
        row.update(work())
    except ArchgenError as exc:
        row.update(status="error", error=exc.render())
    except Exception as exc:  # a crash inside Keras must not end the sweep
        row.update(status="crash", error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}")
    except RecursionError:
        row.update(status="crash", error="RecursionError: the model is too deep to build")
    row["seconds"] = round(time.perf_counter() - start, 4)
    if files:
        (out / RESULT).write_text(json.dumps(row, indent=2))
    if not quiet:
        print(f"[{row['job']}] {printable(row['overrides']) or '(no overrides)'}: {row['status']} "
              f"({row['seconds']:.2f} s)", file=sys.stderr, flush=True)
    if _ON_ROW is not None:
        _ON_ROW(row)
    return row


_ON_ROW: Callable[[dict[str, Any]], None] | None = None  # the progress bar, for jobs run in this process


def set_row_listener(listener: Callable[[dict[str, Any]], None] | None) -> None:
    """Have ``listener`` called with each row a job in this process finishes (None: nobody)."""
    global _ON_ROW
    _ON_ROW = listener


def _run_variant(data: dict, out: Path, command: str | None, options: SweepOptions) -> dict[str, Any]:
    if command == "train":
        from archgen.train.variant import train_variant

        return train_variant(data, out, options)
    from archgen.output import write_atomic
    from archgen.planner import make_plan
    from archgen.planner.cost import activation_bytes
    from archgen.report.data import plan_to_dict
    from archgen.config import validate

    spec = validate(data)
    plan = make_plan(spec)
    if command == "build" or options.job_files:
        write_atomic(out / "plan.json", lambda tmp: tmp.write_text(json.dumps(plan_to_dict(plan))), suffix=".json")
    row = {"total_params": plan.total_params, "outputs": {h: list(s) for h, s in plan.output_shapes.items()},
           "total_flops": plan.total_flops, "activation_bytes": activation_bytes(plan)}
    if command == "build":
        from archgen import export
        from archgen.emit import emit_model
        from archgen.planner.guard import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PARAMS, check_size

        check_size(plan, options.max_params or DEFAULT_MAX_PARAMS, options.max_memory or DEFAULT_MAX_MEMORY)
        from archgen.backend import import_keras

        model = emit_model(plan, options.precision)
        targets = export.targets(out / spec.name, spec.name, options.formats)
        export.write_all(model, targets, force=True)
        row.update(model=str(targets[options.formats[0]]), files={f: str(p) for f, p in targets.items()},
                   keras_params=model.count_params())
        import_keras().backend.clear_session()  # the basic launcher runs every job in this process
    return row
