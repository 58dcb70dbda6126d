"""Hydra multirun sweeps: one job per variant, one results table at the end.

Hydra itself runs the sweep (its sweeper and whichever launcher is selected: basic,
joblib, submitit, ray). Each job catches its own errors and writes ``result.json`` into its
Hydra output folder; the main process reads them back, so a failing or killed variant is a
row in the table and never stops the others. The config file reaches Hydra only as the
checked mapping archgen read (``archgen.spec.load.store_config``), never as a file.
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import math
import os
import sys
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from archgen.errors import ArchgenError, SpecError, printable
from archgen.planner.guard import DEFAULT_MAX_VARIANTS

RESULT = "result.json"
STARTED = "started"  # written by a job as it starts: a folder with it and no result was killed
TABLE_ROWS = 100  # a longer sweep shows its failures and the first rows; the files have them all
# results.csv: "job", one column per swept key, then these (overrides: the variant's overrides as text)
COLUMNS = ("overrides", "status", "total_params", "outputs", "total_flops", "activation_bytes", "seconds", "error")


@dataclass
class SweepOptions:
    """What the command line asked of every variant; it travels to the jobs inside ``SweepTask``."""

    quiet: bool = False
    force: bool = False
    max_variants: int = DEFAULT_MAX_VARIANTS
    formats: list[str] = field(default_factory=lambda: ["keras"])
    precision: str = "float32"
    max_params: float | None = None
    max_memory: float | None = None
    swept: list[str] = field(default_factory=list)  # the keys with several values: a column each
    lines: bool = True  # a line on stderr per finished job (off while a progress bar shows)
    json: bool = False  # one JSON object on stdout instead of the table
    wide: bool = False  # the table with every column and exact numbers
    job_files: bool = False  # plan-only sweeps: a folder per variant too (launcher sweeps always have one)


def run_sweep(command: str, config: str, overrides: Sequence[str], options: SweepOptions | None = None) -> int:
    """Run ``command`` (build or summary) for every variant Hydra's sweeper makes of ``overrides``."""
    from archgen.spec.guard import check_mapping
    from archgen.spec.load import check_config_path, check_override_groups, guard_resolvers, read_config_file

    options = options or SweepOptions()
    path = check_config_path(config)
    data = read_config_file(path)
    check_mapping(data, path.parent)
    check_override_groups(path.parent, overrides)
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


def swept_keys(overrides: Sequence[str]) -> tuple[list[str], list[str]]:
    """The keys the sweep varies (a column each) and the overrides every variant shares, as
    Hydra writes them into a job's overrides."""
    from archgen.spec.load import schema_overrides

    swept, fixed = [], []
    for override in parse_overrides(schema_overrides(overrides)):
        if override.is_sweep_override():
            if override.key_or_group not in swept:
                swept.append(override.key_or_group)
        elif not override.key_or_group.startswith("hydra"):
            try:
                text = override.get_key_element()
                if not override.is_delete() or override.value() is not None:
                    text += "=" + override.get_value_element_as_str()
            except Exception:  # noqa: BLE001 - only the text shown above the table
                text = override.input_line or ""
            fixed.append(text.lstrip("+"))
    return swept, fixed


def swept_values(overrides: Sequence[str], keys: Sequence[str]) -> dict[str, Any]:
    """``{key: value}`` of the swept ``keys`` among a variant's overrides, values typed as Hydra
    reads them (``input.shape=[32,32,1]`` -> ``[32, 32, 1]``)."""
    out: dict[str, Any] = {}
    if not keys:
        return out
    for text in overrides:
        try:
            override = parsed_override(text)
        except Exception:  # noqa: BLE001 - a row never fails over how its values are shown
            continue
        if override.key_or_group in keys:
            try:
                value = override.value()
                json.dumps(value)
            except Exception:  # noqa: BLE001 - not plain data: the text Hydra would write
                value = override.get_value_element_as_str()
            out[override.key_or_group] = value
    return {key: out[key] for key in keys if key in out}




@functools.lru_cache(maxsize=65536)
def parsed_override(text: str):
    """Hydra's parse of one override; a sweep's variants repeat the same few strings, so each is
    parsed once (the grammar costs ~1 ms a string)."""
    return _parser().parse_override(text)


@functools.cache
def _parser():
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create()


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


def expand_variants(overrides: Sequence[str], root: Path, cap: int) -> list[list[str]] | None:
    """Each variant's overrides, as Hydra's basic sweeper makes them, after checking their number
    against ``cap`` without expanding them. None when another sweeper is chosen."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.errors import HydraException

    from archgen.spec.load import schema_overrides

    parsed = parse_overrides(schema_overrides(overrides))
    total = 1
    for override, text in zip(parsed, overrides):  # one parse per override, in order
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise SpecError("interval() needs a sweeper that samples, e.g. hydra/sweeper=optuna; the basic "
                                "sweeper takes lists, range() and choice()", path="overrides",
                                value=printable(text))
            count = _count(override, root, printable(text))
            total *= count
            if count > cap:  # alone: an empty list elsewhere must not let a huge range be listed
                total = count
        if total > cap:
            raise SpecError(f"the sweep would run more than {cap:,} variants; pass --max-variants to allow more",
                            path="overrides", value=printable(" ".join(overrides)))
    if any(o.key_or_group == "hydra/sweeper" for o in parsed):
        return None
    try:
        return [list(v) for v in BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]]
    except HydraException as exc:
        raise SpecError(f"bad override: {' '.join(str(exc).split())}", path="overrides") from None


def parse_overrides(overrides: Sequence[str]):
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as exc:
        raise SpecError(f"bad override: {printable(' '.join(str(exc).split()))}", path="overrides") from None


def _count(override, root: Path, shown: str) -> int:
    import fnmatch

    value = override.value()
    kind = type(value).__name__
    if kind == "ChoiceSweep":
        return len(value.list)
    if kind == "RangeSweep":
        return _range_count(value.start, value.stop, value.step, shown)
    if kind == "Glob":  # options of a config group in the config's folder
        if not (root / override.key_or_group).is_dir():
            raise SpecError("glob() picks options of a config group (a folder beside the config); "
                            f"there is no folder {override.key_or_group}/", path="overrides", value=shown)
        names = [p.stem for p in (root / override.key_or_group).glob("*.yaml")]
        return sum(any(fnmatch.fnmatch(n, i) for i in value.include)
                   and not any(fnmatch.fnmatch(n, e) for e in value.exclude) for n in names)
    return 1


def _range_count(start: Any, stop: Any, step: Any, shown: str) -> int:
    """How many values Hydra's ``range(start, stop, step)`` yields, counted exactly (never by listing
    them, never through a float that overflows): any numbers, however large, give a count or one
    ``SpecError``."""
    from fractions import Fraction

    numbers = (start, stop, step)
    if not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
        raise SpecError("range() takes numbers", path="overrides", value=shown)
    if not all(math.isfinite(n) for n in numbers if isinstance(n, float)):
        raise SpecError("range() takes finite numbers (not inf or nan)", path="overrides", value=shown)
    if step == 0:
        raise SpecError("range() needs a step other than 0", path="overrides", value=shown)
    # Hydra counts ints with range() and floats with exact decimals: a Fraction holds either exactly.
    span = Fraction(stop) - Fraction(start)
    count = max(0, math.ceil(span / Fraction(step)))
    if count == 0:
        raise SpecError("range() gives no values: it counts from start up to stop, stop excluded (down with a "
                        "negative step)", path="overrides", value=shown)
    return count


def plan_sweep(data: dict, overrides: Sequence[str], sweep_dir: Path, options: SweepOptions) -> list[dict] | None:
    """A plan-only sweep in this process: Hydra's override parser and sweep expansion, without a
    launcher's per-job composition (~0.15 s a job). None when the sweep needs a launcher, config
    groups or a defaults list; ``hydra_sweep`` runs those.

    Each variant's ``++key=value`` overrides are applied to a plain copy of the data, as Hydra's
    ``OmegaConf.update(..., merge=True)`` applies them; any other form, or a value with an
    interpolation, goes through OmegaConf itself. By default the variants write nothing but their
    row (results.csv/json); ``--job-files`` adds Hydra's folder per variant.
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.errors import HydraException

    from archgen.spec.load import schema_overrides

    parsed = parse_overrides(schema_overrides(overrides))
    if "defaults" in data or any(o.key_or_group.startswith("hydra") or o.package is not None
                                 or "/" in o.key_or_group or (o.is_sweep_override() and not o.is_discrete_sweep())
                                 for o in parsed):
        return None
    try:
        variants = BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]
    except HydraException as exc:
        raise SpecError(f"bad override: {' '.join(str(exc).split())}", path="overrides") from None
    rows = []
    for num, variant in enumerate(variants):
        out = sweep_dir / str(num)

        def variant_job(variant=variant, out=out) -> dict[str, Any]:
            config = variant_config(data, variant)
            if options.job_files:
                _write_hydra_files(out, config, variant)
            return _run_variant(config, out, "summary", options)

        rows.append(run_job(num, variant, out, variant_job, not options.lines, options.swept,
                            files=options.job_files))
    return rows


def variant_config(data: dict, variant: Sequence[str]) -> dict[str, Any]:
    """``data`` with one variant's overrides applied, checked and resolved as any config is."""
    from archgen.spec.load import _has_interpolation, resolve
    from archgen.spec.read import check_tree

    config = _apply_plain(data, variant)
    if config is not None and not _has_interpolation(config):
        check_tree(config)
        return config
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    cfg = OmegaConf.create(data)
    try:
        ConfigLoaderImpl._apply_overrides_to_config([parsed_override(o) for o in variant], cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        raise SpecError(" ".join(str(exc).split()), path="overrides") from None
    return resolve(cfg)


class _Unusual(Exception):
    """An override the plain path leaves to OmegaConf."""


def _apply_plain(data: dict, variant: Sequence[str]) -> dict | None:
    """``data`` with ``++key=value`` overrides applied, as ``OmegaConf.update(cfg, key, value,
    merge=True, force_add=True)`` does; None when an override takes another form."""
    config = copy.deepcopy(data)
    try:
        for text in variant:
            override = parsed_override(text)
            if not override.is_force_add():
                return None
            value = override.value()
            if _has_text(value, "${"):
                return None
            _force_add(config, override.key_or_group.split("."), copy.deepcopy(value))
    except _Unusual:
        return None
    return config


def _force_add(node: Any, parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        if isinstance(node, dict):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _Unusual()
        if not isinstance(node, (dict, list)):
            raise _Unusual()
    last = parts[-1]
    if isinstance(node, list):
        if not (last.isdigit() and int(last) < len(node)):
            raise _Unusual()
        node[int(last)] = value
    elif isinstance(value, dict) and isinstance(node.get(last), dict):
        _merge(node[last], value)
    else:
        node[last] = value


def _merge(into: dict, value: dict) -> None:
    """OmegaConf.merge of one mapping into another: mappings merge, everything else replaces."""
    for key, item in value.items():
        if isinstance(item, dict) and isinstance(into.get(key), dict):
            _merge(into[key], item)
        else:
            into[key] = item


def _has_text(value: Any, text: str) -> bool:
    if isinstance(value, str):
        return text in value
    if isinstance(value, dict):
        return any(_has_text(k, text) or _has_text(v, text) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_text(v, text) for v in value)
    return False


def _write_hydra_files(out: Path, config: dict, variant: Sequence[str]) -> None:
    """A job's config and overrides, saved as Hydra saves them."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    (out / ".hydra").mkdir(parents=True, exist_ok=True)
    (out / ".hydra" / "config.yaml").write_text(yaml.dump(config, Dumper=dumper, sort_keys=False))
    (out / ".hydra" / "overrides.yaml").write_text(yaml.dump(list(variant), Dumper=dumper))


def hydra_sweep(command: str, data: dict, root: Path, overrides: Sequence[str], variants: list[list[str]] | None,
                sweep_dir: Path, options: SweepOptions) -> list[dict[str, Any]]:
    """The sweep through Hydra's sweeper and the selected launcher; jobs write ``result.json``.

    If the launcher fails part-way (a joblib worker killed by the kernel takes the pool down, even
    one killed as it starts, before any job), the variants that never started run again one at a
    time, so each variant gets a row: one whose job still leaves no result is ``killed``.
    """
    from archgen.spec.load import schema_overrides, store_config

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
    with _pool_kills() as bystanders:
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


@contextmanager
def _pool_kills():
    """The worker PIDs that joblib's pool kills itself once one worker died: their variants were
    bystanders and run again; the variant whose worker died first is the ``killed`` row.

    loky kills the remaining workers through ``process_executor.kill_process_tree`` (joblib
    1.3-1.5); if that name moves, bystanders are reported as killed too, which is safe.
    """
    killed: set[int] = set()
    try:
        from joblib.externals.loky import process_executor
    except ImportError:
        yield killed
        return
    real = getattr(process_executor, "kill_process_tree", None)
    if real is None:
        yield killed
        return

    def recording(process, *args, **kwargs):
        if process.exitcode is None and process.is_alive():  # the worker that died first is not a bystander
            killed.add(process.pid)
        return real(process, *args, **kwargs)

    process_executor.kill_process_tree = recording
    try:
        yield killed
    finally:
        process_executor.kill_process_tree = real


def _pid(job: Path) -> int | None:
    try:
        return int((job / STARTED).read_text())
    except (OSError, ValueError):
        return None


def _config_name() -> str:
    from archgen.spec.load import CONFIG_NAME

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
        error = SpecError(f"Hydra could not run the sweep: {printable(_first_line(exc))}", path="overrides")
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


def _env_allowed() -> bool:
    from archgen.spec.load import ALLOW_ENV

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
        from archgen.spec.load import ALLOW_ENV

        if self.allow_env:
            os.environ[ALLOW_ENV] = "1"
        else:
            os.environ.pop(ALLOW_ENV, None)
        sweep_job(cfg, self.command, self.options)


def sweep_job(cfg, command: str, options: SweepOptions) -> None:
    """One variant, run by Hydra's launcher (maybe in another process). Never raises."""
    from hydra.core.hydra_config import HydraConfig

    from archgen.spec.load import resolve

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


def _run_variant(data: dict, out: Path, command: str | None, options: SweepOptions) -> dict[str, Any]:
    from archgen.output import write_atomic
    from archgen.planner import make_plan
    from archgen.planner.cost import activation_bytes
    from archgen.report.data import plan_to_dict
    from archgen.spec import validate

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


def collect_results(sweep_dir: Path, count: int | None = None, swept: Sequence[str] = (), *,
                    variants: Sequence[Sequence[str]] | None = None) -> list[dict[str, Any]]:
    """One row per job folder (the first ``count``, when known: older folders of a reused sweep
    folder are not this sweep's); a job that left no result (killed, out of memory) is a failed row.
    With ``variants`` (each job's overrides) every variant gets a row, also one whose worker died
    before its folder was made."""
    rows = []
    jobs = {int(p.name): p for p in sweep_dir.iterdir()
            if p.is_dir() and p.name.isdigit() and (count is None or int(p.name) < count)}
    for num in sorted(set(jobs) | set(range(len(variants or ())))):
        job = jobs.get(num)
        result = None if job is None else job / RESULT
        if result is not None and result.exists():
            try:
                rows.append(json.loads(result.read_text()))
                continue
            except ValueError:
                pass  # cut short while being written
        if variants is not None and num < len(variants):  # as Hydra lists a job's own: no hydra settings
            listed = [o for o in variants[num] if not o.lstrip("+~").split("=", 1)[0].startswith(("hydra/", "hydra."))]
        else:
            overrides = sweep_dir / str(num) / ".hydra" / "overrides.yaml"
            text = overrides.read_text() if overrides.exists() else ""
            listed = [line.strip("- '\"") for line in text.splitlines() if line.strip()]
        rows.append({"job": num, "overrides": " ".join(o.lstrip("+") for o in listed),
                     "swept": swept_values(listed, swept), "status": "killed",
                     "error": "the job ended without a result (killed, or out of memory)"})
    return rows


def write_results(sweep_dir: Path, rows: list[dict[str, Any]], swept: Sequence[str] = ()) -> None:
    from archgen.output import write_atomic

    write_atomic(sweep_dir / "results.json", lambda tmp: tmp.write_text(json.dumps(rows, indent=2)), suffix=".json")
    names = {key: key if key not in ("job", *COLUMNS) else f"swept:{key}" for key in swept}

    def cell(value: Any) -> Any:
        return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else value

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["job", *names.values(), *COLUMNS], extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                values = row.get("swept", {})
                writer.writerow({**{k: cell(v) for k, v in row.items()},
                                 **{names[k]: cell(values[k]) for k in swept if k in values}})

    write_atomic(sweep_dir / "results.csv", write_csv, suffix=".csv")


def sweep_json(command: str, rows: list[dict[str, Any]], sweep_dir: Path, swept: Sequence[str],
               fixed: Sequence[str]) -> dict[str, Any]:
    """The ``--json`` answer of a sweep: one object, the rows as in results.json."""
    return {"command": command, "sweep_dir": str(sweep_dir), "swept": list(swept), "fixed": list(fixed),
            "variants": len(rows), "failed": sum(r["status"] != "ok" for r in rows),
            "results": {"json": str(sweep_dir / "results.json"), "csv": str(sweep_dir / "results.csv")},
            "rows": rows}


def print_results(rows: list[dict[str, Any]], sweep_dir: Path, swept: Sequence[str] = (),
                  fixed: Sequence[str] = (), wide: bool = False) -> None:
    from rich.console import Console
    from rich.text import Text

    from archgen.report.summary import print_sweep, sweep_order

    # Values, paths and errors come from the command line: shown as typed, never read as markup
    # ([link=...], [bold]) or emoji codes (:smile:).
    console = Console(highlight=False, markup=False, emoji=False)
    if not console.is_terminal:
        console.width = max(console.width, 140)
    ordered = sweep_order(rows)
    shown = ordered if len(rows) <= TABLE_ROWS else [r for i, r in enumerate(ordered) if i < TABLE_ROWS // 2
                                                     or r["status"] != "ok"][:TABLE_ROWS]
    failed = sum(r["status"] != "ok" for r in rows)
    title = f"{len(rows)} variants in {printable(str(sweep_dir))}" + (f", {failed} failed" if failed else "")
    print_sweep(shown, list(swept), list(fixed), title, console, wide)
    if len(shown) < len(rows):
        console.print(Text(f"showing {len(shown)} of {len(rows)} variants (the first ones and every failure); "
                           "all are in the files below"))
    console.print(Text(f"results: {printable(str(sweep_dir / 'results.csv'))}, "  # soft: a long path is never split
                       f"{printable(str(sweep_dir / 'results.json'))}"), soft_wrap=True)


class SweepProgress:
    """A live bar on stderr (done/total, failures so far, ETA) while the sweep runs; shown only
    when stderr is a terminal and not ``-q``. Jobs in this process report through ``_ON_ROW``;
    jobs elsewhere (joblib, submitit, ray) are seen by the ``result.json`` files they write."""

    def __init__(self, sweep_dir: Path, total: int | None, options: SweepOptions):
        from rich.console import Console

        self.sweep_dir, self.total = sweep_dir, total
        self.console = Console(stderr=True, highlight=False, markup=False, emoji=False)
        self.shown = not options.quiet and self.console.is_terminal
        self.seen: set[int] = set()
        self.failed = 0
        self.started = time.time()

    def __enter__(self) -> SweepProgress:
        global _ON_ROW
        if not self.shown:
            return self
        import threading

        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), console=self.console, transient=False)
        self.task = self.bar.add_task("sweep", total=self.total, failed=0)
        self.bar.start()
        _ON_ROW = self.row
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()
        return self

    def row(self, row: dict[str, Any]) -> None:
        with self.lock:
            if row.get("job") in self.seen:
                return
            self.seen.add(row.get("job"))
            self.failed += row.get("status") != "ok"
            self.bar.update(self.task, completed=len(self.seen), failed=self.failed)

    def _poll(self) -> None:
        while not self.stop.wait(0.5):
            self._scan()

    def _scan(self) -> None:
        """Rows that jobs in other processes wrote since the sweep started."""
        try:
            jobs = [p for p in self.sweep_dir.iterdir() if p.name.isdigit() and int(p.name) not in self.seen
                    and (self.total is None or int(p.name) < self.total)]
        except OSError:
            return
        for job in jobs:
            try:
                result = job / RESULT
                if result.stat().st_mtime >= self.started - 1:  # not a row of an earlier sweep (--force)
                    self.row(json.loads(result.read_text()))
            except (OSError, ValueError, AttributeError):
                pass  # not finished, or being written

    def __exit__(self, *exc: Any) -> None:
        global _ON_ROW
        if not self.shown:
            return
        _ON_ROW = None
        self.stop.set()
        self.poller.join()
        if exc[0] is None:
            self._scan()
        self.bar.stop()
