"""A sweep launched through Hydra's sweeper and the selected launcher, and mended when the
launcher loses workers: the variants that never started run again one at a time."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from archgen.compat.joblib import pool_kills
from archgen.errors import ArchgenError, SpecError, printable
from archgen.sweep.job import RESULT, STARTED, SweepTask
from archgen.sweep.options import SweepOptions
from archgen.sweep.results import collect_results


def hydra_sweep(command: str, data: dict, root: Path, overrides: Sequence[str], variants: list[list[str]] | None,
                sweep_dir: Path, options: SweepOptions) -> list[dict[str, Any]]:
    """The sweep through Hydra's sweeper and the selected launcher; jobs write ``result.json``.

    If the launcher fails part-way (a joblib worker killed by the kernel takes the pool down, even
    one killed as it starts, before any job), the variants that never started run again one at a
    time, so each variant gets a row: one whose job still leaves no result is ``killed``.
    """
    from archgen.config.load import schema_overrides, store_config

    store_config(data)
    options = replace(options, job_files=True)  # Hydra makes each job's folder anyway
    for num in range(len(variants or ())):  # a folder reused with --force: no stale row may survive
        for name in (RESULT, STARTED):
            (sweep_dir / str(num) / name).unlink(missing_ok=True)
    base = ["--config-dir", str(root.resolve()), "--config-name", _config_name(), "--multirun",
            # "none" leaves logging alone; "disabled" would reconfigure (and close) existing handlers.
            # absolute: a launcher's workers may run elsewhere (Ray's in its session folder)
            "hydra/job_logging=none", "hydra/hydra_logging=none", f"hydra.sweep.dir={sweep_dir.resolve()}"]
    task = SweepTask(command, options)
    # Workers the pool killed itself once one died were bystanders: their variants run again. Without
    # joblib's internals at hand none is seen as one, and their rows say killed, which is safe.
    with pool_kills() as bystanders:
        failure = _launch(task, [*base, *schema_overrides(overrides), "hydra.sweep.subdir=${hydra.job.num}"])
    if failure is not None and variants is None:
        raise failure
    if failure is not None:
        launcher = [o for o in overrides if o.startswith(("hydra/launcher", "hydra.launcher"))]
        for num, variant in enumerate(variants):
            job = sweep_dir / str(num)
            # Not started: no folder, or one Hydra made but our job never reached (no ``started``),
            # or its worker was a bystander the pool killed. The worker that died first is not rerun.
            if not (job / RESULT).exists() and (not job.exists() or _pid(job) is None or _pid(job) in bystanders):
                try:
                    _launch(task, [*base, *variant, *launcher, f"hydra.sweep.subdir={num}"])
                except ArchgenError:  # this variant alone could not be launched: its row says killed
                    pass
    return collect_results(sweep_dir, None if variants is None else len(variants), options.swept,
                           variants=variants)


def _pid(job: Path) -> int | None:
    try:
        return int((job / STARTED).read_text())
    except (OSError, ValueError):
        return None


def _config_name() -> str:
    from archgen.config.load import CONFIG_NAME

    return CONFIG_NAME


def _launch(task: SweepTask, argv: list[str]) -> SpecError | None:
    """One ``hydra.main`` multirun. A Hydra error before any job ran is one ``SpecError``; a
    failure once jobs ran (a launcher that lost a worker) is returned for the caller to mend."""
    import hydra

    saved_argv, saved_full = sys.argv, os.environ.get("HYDRA_FULL_ERROR")
    sys.argv = ["archgen", *argv]
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra raises instead of printing a traceback and exiting
    sweep_dir = Path(next(a.split("=", 1)[1] for a in argv if a.startswith("hydra.sweep.dir=")))
    before = _job_dirs(sweep_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Hydra's advice on _self_ and schema matching is not for our users
            hydra.main(version_base="1.3", config_path=None, config_name=None)(task)()
    except SystemExit as exc:
        if exc.code:
            raise SpecError("Hydra could not run the sweep", path="overrides") from None
    except Exception as exc:
        why = _first_line(exc)
        ours = ("hydra.sweep.dir=", "hydra.sweep.subdir=", "hydra/job_logging=", "hydra/hydra_logging=")
        settings = [a for a in argv if a.lstrip("+~").startswith(("hydra.", "hydra/")) and not a.startswith(ours)]
        if not str(exc).strip() and settings:  # Hydra asserts on a setting out of its range, silently
            why += f"; check the Hydra settings typed: {', '.join(settings)}"
        error = SpecError(f"Hydra could not run the sweep: {printable(why)}", path="overrides")
        if _job_dirs(sweep_dir) == before and not _lost_worker(exc):
            raise error from None
        return error
    finally:
        sys.argv = saved_argv
        if saved_full is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = saved_full
    return None


def _lost_worker(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it wraps) is a process pool that lost a worker: joblib's loky pool
    raises ``TerminatedWorkerError``, a ``BrokenExecutor``, also when the worker died as it
    started, before any job made a folder. The sweep goes on; it is not a Hydra error."""
    from concurrent.futures import BrokenExecutor

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, BrokenExecutor):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _job_dirs(sweep_dir: Path) -> set[str]:
    # numbered folders only: a launcher's own (submitit's .submitit/) appear before any job runs
    return {p.name for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()} if sweep_dir.is_dir() else set()


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
