"""``archgen train CONFIG --data DIR -m KEY=A,B ...``: train every variant, rank them by validation Dice.

The sweep is archgen's Hydra sweep (``archgen.sweep``): the basic launcher trains the variants one
after the other in this process, ``hydra/launcher=joblib`` side by side in worker processes, the
Ray launchers on a cluster's nodes; a variant that fails or is killed is a row of its own and the
others go on. Each variant trains into ``SWEEP_DIR/N/run/`` as ``archgen train -o`` would.

Devices: with the basic launcher each variant trains data-parallel over every device (see
``archgen.train.distribute``). A worker process of another launcher that sees several GPUs and
has none chosen for it (``CUDA_VISIBLE_DEVICES`` unset or listing several) keeps to one: the
GPU of its first job's number modulo the GPU count, so joblib with ``n_jobs`` equal to the
GPUs runs one variant per GPU. Ray's launcher chooses the GPUs itself (``num_gpus`` in its
config), one variant per device or node.

``results.csv`` and ``results.json`` list the variants best first: by ``val_dice`` (highest
first; by ``val_loss`` where there is no class head), then the failed ones.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from archgen.errors import printable
from archgen.train.variant import keep_to_one_gpu, train_variant, visible_gpus  # noqa: F401  (here before)

COLUMNS = ("val_dice", "val_loss", "params", "flops", "seconds", "steps", "best_step", "status", "overrides",
           "run_dir", "error")
TABLE_ROWS = 100


def _finite(value: Any) -> float | None:
    try:
        return float(value) if math.isfinite(float(value)) else None
    except (TypeError, ValueError):
        return None


def ranked(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Finished variants best first (``val_dice`` highest, else ``val_loss`` lowest), then the failed ones by job."""
    ok = [r for r in rows if r.get("status") == "ok"]
    failed = sorted((r for r in rows if r.get("status") != "ok"), key=lambda r: r.get("job", 0))

    def key(row: dict[str, Any]) -> tuple:
        dice, loss = _finite(row.get("val_dice")), _finite(row.get("val_loss"))  # NaN would sort anywhere
        return (-(dice if dice is not None else -1.0), loss if loss is not None else float("inf"), row.get("job", 0))

    return sorted(ok, key=key) + failed


def report_train_sweep(rows: list[dict[str, Any]], sweep_dir: Path, options, fixed: Sequence[str]) -> int:
    """Write results.csv and results.json best first, print the table (or JSON); exit 1 if any failed."""
    from archgen.sweep.results import sweep_json

    rows = ranked(rows)
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if row.get("status") == "ok" else None
    write_train_results(sweep_dir, rows, options.swept)
    if options.json:
        print(json.dumps(sweep_json("train", rows, sweep_dir, options.swept, fixed), indent=2))
    else:
        print_train_results(rows, sweep_dir, options.swept, fixed, options.wide)
    failed = sum(row.get("status") != "ok" for row in rows)
    if failed:
        print(f"error: {failed} of {len(rows)} variants failed", file=sys.stderr)
        return 1
    return 0


def write_train_results(sweep_dir: Path, rows: list[dict[str, Any]], swept: Sequence[str]) -> None:
    from archgen.output import write_atomic

    write_atomic(sweep_dir / "results.json", lambda tmp: tmp.write_text(json.dumps(rows, indent=2)), suffix=".json")
    names = {key: key if key not in ("rank", "job", *COLUMNS) else f"swept:{key}" for key in swept}

    def cell(value: Any) -> Any:
        return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else value

    def write_csv(tmp: Path) -> None:
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=["rank", "job", *names.values(), *COLUMNS], extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                values = row.get("swept", {})
                writer.writerow({**{k: cell(v) for k, v in row.items()},
                                 **{names[k]: cell(values[k]) for k in swept if k in values}})

    write_atomic(sweep_dir / "results.csv", write_csv, suffix=".csv")


def _number(value: Any, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _count(value: Any) -> str:
    if value is None:
        return ""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.1f}{unit}"
    return str(value)


def print_train_results(rows: list[dict[str, Any]], sweep_dir: Path, swept: Sequence[str], fixed: Sequence[str],
                        wide: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, markup=False, emoji=False)  # values are shown as typed
    if not console.is_terminal:
        console.width = max(console.width, 120)
    failed = sum(r.get("status") != "ok" for r in rows)
    title = f"{len(rows)} variants in {printable(str(sweep_dir))}, best first" + (f", {failed} failed" if failed else "")
    table = Table(title=Text(title), title_justify="left", box=None, header_style="bold")
    table.add_column("rank", justify="right")
    table.add_column("job", justify="right")
    for key in swept:
        table.add_column(Text(printable(key)))
    for name in ("val_dice", "val_loss", "params", "seconds"):
        table.add_column(name, justify="right")
    table.add_column("status")
    shown = rows if wide or len(rows) <= TABLE_ROWS else rows[:TABLE_ROWS]
    for row in shown:
        values = row.get("swept", {})
        table.add_row(str(row.get("rank") or ""), str(row.get("job", "")),
                      *[Text(printable(json.dumps(values[k]) if isinstance(values.get(k), (list, dict))
                                       else str(values.get(k, "")))) for k in swept],
                      _number(row.get("val_dice")), _number(row.get("val_loss")),
                      f"{row['params']:,}" if wide and row.get("params") is not None else _count(row.get("params")),
                      _number(row.get("seconds"), 1), Text(str(row.get("status", ""))))
    if fixed:
        console.print(Text("every variant: " + printable(" ".join(fixed))))
    console.print(table)
    for row in rows:
        if row.get("status") != "ok":
            console.print(Text(f"job {row.get('job')} ({row.get('status')}): {printable(row.get('overrides', ''))}"))
            console.print(Text("  " + printable(str(row.get("error", "")).splitlines()[0] if row.get("error") else "")))
    if len(shown) < len(rows):
        console.print(Text(f"showing {len(shown)} of {len(rows)} variants; all are in the files below"))
    console.print(Text(f"results: {printable(str(sweep_dir / 'results.csv'))} (and results.json)"), soft_wrap=True)
