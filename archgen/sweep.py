"""Hydra multirun sweeps: one job per variant, one results table at the end.

Hydra itself runs the sweep (its sweeper and whichever launcher is selected: basic,
joblib, submitit, ray). Each job catches its own errors and writes ``result.json`` into its
Hydra output folder; the main process reads them back, so a failing or killed variant is a
row in the table and never stops the others.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from archgen.errors import ArchgenError

RESULT = "result.json"
_COMMAND_ENV = "ARCHGEN_SWEEP_COMMAND"  # read by jobs, which may run in other processes
_QUIET_ENV = "ARCHGEN_SWEEP_QUIET"
TABLE_ROWS = 100  # a longer sweep shows its failures and the first rows; the files have them all
COLUMNS = ("job", "overrides", "status", "params", "output_shape", "flops", "activation_bytes", "seconds", "error")


def run_sweep(command: str, config: str, overrides: Sequence[str], *, quiet: bool = False) -> int:
    """Run ``command`` (build or summary) for every variant Hydra's sweeper makes of ``overrides``."""
    from archgen.spec.load import check_config_path, guard_resolvers

    path = check_config_path(config)
    guard_resolvers()
    # Microseconds: two sweeps started in the same second must not share a folder (hydra #1607).
    sweep_dir = Path("multirun") / datetime.now().strftime("%Y-%m-%d/%H-%M-%S.%f")
    chosen = [o for o in overrides if o.startswith("hydra.sweep.dir=")]
    if chosen:
        sweep_dir = Path(chosen[-1].split("=", 1)[1])
        overrides = [o for o in overrides if not o.startswith("hydra.sweep.dir=")]
    rows = plan_sweep(path, overrides, sweep_dir, quiet) if command == "summary" else None
    if rows is None:
        hydra_sweep(command, path, overrides, sweep_dir, quiet)
        rows = collect_results(sweep_dir)
    write_results(sweep_dir, rows)
    print_results(rows, sweep_dir)
    failed = sum(row["status"] != "ok" for row in rows)
    if failed:
        print(f"error: {failed} of {len(rows)} variants failed", file=sys.stderr)
        return 1
    return 0


def plan_sweep(path: Path, overrides: Sequence[str], sweep_dir: Path, quiet: bool) -> list[dict] | None:
    """A plan-only sweep in this process: Hydra's override parser and sweep expansion, without a
    launcher's per-job composition (~0.15 s a job). None when the sweep needs a launcher, config
    groups or a defaults list; ``hydra_sweep`` runs those."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    import yaml

    from archgen.errors import SpecError
    from archgen.spec.load import plain_yaml, schema_overrides

    Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    base = plain_yaml(path)
    base_cfg = OmegaConf.create(base) if base is not None else None
    parser = OverridesParser.create()
    try:
        parsed = parser.parse_overrides(schema_overrides(overrides))
        if base is None or any(o.key_or_group.startswith("hydra") or o.package is not None or "/" in o.key_or_group
                               or (o.is_sweep_override() and not o.is_discrete_sweep()) for o in parsed):
            return None
        variants = BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]
    except HydraException as exc:
        raise SpecError(f"bad override: {' '.join(str(exc).split())}", path="overrides") from None
    rows = []
    for num, variant in enumerate(variants):
        out = sweep_dir / str(num)
        (out / ".hydra").mkdir(parents=True, exist_ok=True)

        def variant_job(variant=variant, out=out) -> dict[str, Any]:
            cfg = copy.deepcopy(base_cfg)  # half the cost of OmegaConf.create from the dict
            try:
                ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides(variant), cfg)
                data = OmegaConf.to_container(cfg, resolve=True)
            except (HydraException, OmegaConfBaseException) as exc:
                raise SpecError(" ".join(str(exc).split()), path="overrides") from None
            # Saved as Hydra saves a job's config and overrides.
            (out / ".hydra" / "config.yaml").write_text(yaml.dump(data, Dumper=Dumper, sort_keys=False))
            (out / ".hydra" / "overrides.yaml").write_text(yaml.dump(list(variant), Dumper=Dumper))
            return _run_variant(data, out, "summary")

        rows.append(run_job(num, variant, out, variant_job, quiet))
    return rows


def hydra_sweep(command: str, path: Path, overrides: Sequence[str], sweep_dir: Path, quiet: bool) -> None:
    """The sweep through Hydra's sweeper and the selected launcher; jobs write ``result.json``."""
    import hydra

    from archgen.errors import SpecError
    from archgen.spec.load import schema_overrides

    argv = [
        "archgen", "--config-path", str(path.parent.resolve()), "--config-name", path.stem, "--multirun",
        *schema_overrides(overrides),
        f"hydra.sweep.dir={sweep_dir}", "hydra.sweep.subdir=${hydra.job.num}",
        # "none" leaves logging alone; "disabled" would reconfigure (and close) existing handlers.
        "hydra/job_logging=none", "hydra/hydra_logging=none",
    ]
    os.environ[_COMMAND_ENV] = command
    os.environ[_QUIET_ENV] = "1" if quiet else ""
    saved = sys.argv
    sys.argv = argv
    try:
        hydra.main(version_base="1.3", config_path=None, config_name=None)(sweep_job)()
    except SystemExit as exc:  # Hydra reports its own composition errors and exits
        if exc.code:
            raise SpecError("Hydra could not run the sweep (its message is above)", path="overrides",
                            value=" ".join(overrides)) from None
    finally:
        sys.argv = saved


def sweep_job(cfg) -> None:
    """One variant, run by Hydra's launcher (maybe in another process). Never raises."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    hc = HydraConfig.get()
    out = Path(hc.runtime.output_dir)
    run_job(hc.job.num, hc.overrides.task, out,
            lambda: _run_variant(OmegaConf.to_container(cfg, resolve=True), out, os.environ.get(_COMMAND_ENV)),
            bool(os.environ.get(_QUIET_ENV)))


def run_job(num: int, overrides: Sequence[str], out: Path, work: Callable[[], dict[str, Any]],
            quiet: bool) -> dict[str, Any]:
    """Run one variant's ``work``, turning any failure into the row's status; write and report the row."""
    row: dict[str, Any] = {"job": num, "overrides": " ".join(o.lstrip("+") for o in overrides), "status": "ok"}
    start = time.perf_counter()
    try:
        row.update(work())
    except ArchgenError as exc:
        row.update(status="error", error=exc.render())
    except Exception as exc:  # a crash inside Keras must not end the sweep
        row.update(status="crash", error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}")
    row["seconds"] = round(time.perf_counter() - start, 4)
    (out / RESULT).write_text(json.dumps(row, indent=2))
    if not quiet:
        print(f"[{row['job']}] {row['overrides'] or '(no overrides)'}: {row['status']} ({row['seconds']:.2f} s)",
              file=sys.stderr, flush=True)
    return row


def _run_variant(data: dict, out: Path, command: str | None) -> dict[str, Any]:
    from archgen.output import write_atomic
    from archgen.plan import make_plan
    from archgen.plan.cost import activation_bytes
    from archgen.report.data import plan_to_dict
    from archgen.spec import validate

    spec = validate(data)
    plan = make_plan(spec)
    write_atomic(out / "plan.json", lambda tmp: tmp.write_text(json.dumps(plan_to_dict(plan))), suffix=".json")
    row = {"params": plan.total_params, "output_shape": {h: list(s) for h, s in plan.output_shapes.items()},
           "flops": plan.total_flops, "activation_bytes": activation_bytes(plan)}
    if command == "build":
        from archgen.emit import emit_model
        from archgen.plan.guard import check_size

        check_size(plan)
        from archgen.backend import import_keras

        model = emit_model(plan)
        target = out / f"{spec.name}.keras"
        write_atomic(target, lambda tmp: model.save(tmp), suffix=".keras")
        row.update(model=str(target), keras_params=model.count_params())
        import_keras().backend.clear_session()  # the basic launcher runs every job in this process
    return row


def collect_results(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per job folder; a job that left no result (killed, out of memory) is a failed row."""
    rows = []
    for job in sorted((p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name)):
        result = job / RESULT
        if result.exists():
            rows.append(json.loads(result.read_text()))
            continue
        overrides = job / ".hydra" / "overrides.yaml"
        text = overrides.read_text() if overrides.exists() else ""
        names = " ".join(line.strip("- '\"").lstrip("+") for line in text.splitlines() if line.strip())
        rows.append({"job": int(job.name), "overrides": names, "status": "killed",
                     "error": "the job ended without a result (killed, or out of memory)"})
    return rows


def write_results(sweep_dir: Path, rows: list[dict[str, Any]]) -> None:
    from archgen.output import write_atomic

    write_atomic(sweep_dir / "results.json", lambda tmp: tmp.write_text(json.dumps(rows, indent=2)), suffix=".json")

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()})

    write_atomic(sweep_dir / "results.csv", write_csv, suffix=".csv")


def print_results(rows: list[dict[str, Any]], sweep_dir: Path) -> None:
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from archgen.plan.cost import fmt_bytes
    from archgen.report.summary import fmt_count

    table = Table(title=f"{len(rows)} variants in {sweep_dir}", box=box.SIMPLE_HEAD, title_justify="left")
    for name in ("job", "overrides", "status", "params", "output", "FLOPs", "activations", "seconds"):
        table.add_column(name, justify="right" if name not in ("overrides", "status", "output") else "left")
    shown = rows if len(rows) <= TABLE_ROWS else [r for i, r in enumerate(rows) if i < TABLE_ROWS // 2
                                                   or r["status"] != "ok"][:TABLE_ROWS]
    for row in shown:
        ok = row["status"] == "ok"
        outputs = ", ".join("x".join(map(str, s)) for s in row.get("output_shape", {}).values())
        table.add_row(str(row["job"]), row["overrides"], "ok" if ok else f"[red]{row['status']}[/]",
                      f"{row['params']:,}" if ok else "", outputs,
                      fmt_count(row.get("flops")) if ok else "", fmt_bytes(row.get("activation_bytes")) if ok else "",
                      f"{row.get('seconds', 0):.2f}")
        if not ok:
            first_line = row.get("error", "").splitlines()[0] if row.get("error") else ""
            table.add_row("", f"[red]{escape(first_line)}[/]", "", "", "", "", "", "")
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 140)
    console.print(table)
    if len(shown) < len(rows):
        console.print(f"showing {len(shown)} of {len(rows)} variants (the first ones and every failure); "
                      "all are in the files below")
    console.print(f"results: {sweep_dir / 'results.csv'}, {sweep_dir / 'results.json'}")
