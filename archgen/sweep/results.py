"""A sweep's rows: read back from the job folders, written to results.json and results.csv,
printed as a table or one JSON object."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from archgen.errors import printable
from archgen.sweep.expand import swept_values
from archgen.sweep.job import RESULT

TABLE_ROWS = 100  # a longer sweep shows its failures and the first rows; the files have them all
# results.csv: "job", one column per swept key, then these (overrides: the variant's overrides as text)
COLUMNS = ("overrides", "status", "total_params", "outputs", "total_flops", "activation_bytes", "seconds", "error")


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
    # One path in full, to copy; the other beside it by name (both paths ran past 80 columns).
    console.print(Text(f"results: {printable(str(sweep_dir / 'results.csv'))} (and results.json)"),
                  soft_wrap=True)  # soft: a long path is never split
