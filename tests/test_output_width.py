"""Tables fit the terminal: at any width every number shows whole (columns go, numbers never get cut)."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from tests.conftest import CONF

UNET = CONF / "unet.yaml"
SAME = CONF / "unet_same.yaml"
VARIANTS = ["input.shape=[32,32,1],[30,30,1]", "encoder.filters=2,4", "encoder.depth=2"]


def render(width: int, draw) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None, highlight=False)
    draw(console)
    return out.getvalue()


def summary_text(width: int, wide: bool = False) -> str:
    from archgen.planner import make_plan
    from archgen.planner.cost import plan_cost
    from archgen.report.summary import print_summary
    from archgen.spec import load_spec

    plan = make_plan(load_spec(UNET))
    return render(width, lambda console: print_summary(plan, console, plan_cost(plan), wide=wide))


@pytest.mark.parametrize("width", [60, 80, 100, 120])
def test_summary_fits_and_keeps_every_number_whole(width):
    text = summary_text(width)
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    assert "params 31,030,658; " in text or "params 31,030,658;\n" in text  # the exact totals, below the table
    assert "FLOPs 300.86G" in text
    total = next(line for line in text.splitlines() if line.strip().startswith("total"))
    assert ("31,030,658" in total and "300.86G" in total) or ("31.0M" in total and "300.9G" in total)
    for shape in ("572x572x1", "570x570x64", "30x30x1024", "392x392x128", "388x388x2"):
        assert shape in text
    assert "bottleneck_conv2" in text and "dec1_crop" in text


def test_summary_drops_columns_before_it_shortens_numbers():
    assert "note" in summary_text(120).splitlines()[2] and "crop 88+88, 88+88" in summary_text(120)
    at80 = summary_text(80)
    assert "note" not in at80.splitlines()[2] and "kind" in at80.splitlines()[2]
    assert "31,030,658" in next(line for line in at80.splitlines() if line.strip().startswith("total"))
    at60 = summary_text(60)
    assert "kind" not in at60.splitlines()[2]
    assert "31.0M" in at60 and "300.9G" in at60


def test_wide_shows_every_column_and_exact_numbers_at_any_width():
    text = summary_text(60, wide=True)
    header = text.splitlines()[2]
    assert all(name in header for name in ("layer", "kind", "output", "params", "FLOPs", "note"))
    assert "300,856,848,896" in text and "31,030,658" in text and "…" not in text


def test_summary_through_the_cli_at_80_columns(monkeypatch, capsys):
    from archgen.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    assert main(["summary", str(UNET)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "31,030,658" in out
    assert max(len(line) for line in re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()) <= 80


def sweep_rows(tmp_path, monkeypatch, cli) -> list[dict]:
    monkeypatch.chdir(tmp_path)
    cli("summary", SAME, "-m", "-q", *VARIANTS, "hydra.sweep.dir=s")
    return json.loads((tmp_path / "s" / "results.json").read_text())


@pytest.mark.parametrize("width", [60, 80, 120])
def test_sweep_table_has_a_column_per_swept_key_and_whole_values(cli, tmp_path, monkeypatch, width):
    from archgen.report.summary import print_sweep

    rows = sweep_rows(tmp_path, monkeypatch, cli)
    text = render(width, lambda console: print_sweep(rows, ["input.shape", "encoder.filters"], ["encoder.depth=2"],
                                                     "4 variants in s", console))
    assert "…" not in text
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width
    assert "every variant: encoder.depth=2" in text
    lines = text.splitlines()
    for row in rows:  # each variant's values on its own line of the table, whole
        line = next(line for line in lines if re.match(rf"\s+{row['job']}\s", line))
        assert "[32,32,1]" in line or "[30,30,1]" in line
        assert re.search(rf"\s{row['swept']['encoder.filters']}\s", line)
        if row["status"] == "ok":
            assert "32x32x2" in line
            assert f"{row['total_params']:,}" in line or ("1.9k" in line or "7.4k" in line)
        else:
            assert "error" in line
    # finished variants first, then the failures, each by job; their errors below with the nearest sizes
    jobs = [int(m.group(1)) for m in (re.match(r"\s+(\d)\s", line) for line in lines) if m]
    assert jobs == [0, 1, 2, 3]
    assert "2 failed:" in text and "nearest: 28 (output 28), 32 (output 32)" in text.replace("\n      ", " ")


def test_sweep_table_at_120_columns_keeps_exact_numbers(cli, tmp_path, monkeypatch):
    from archgen.report.summary import print_sweep

    rows = sweep_rows(tmp_path, monkeypatch, cli)
    text = render(120, lambda console: print_sweep(rows, ["input.shape", "encoder.filters"], [], "t", console))
    assert "1,886" in text and "7,402" in text and "seconds" in text


def test_fmt_short():
    from archgen.report.summary import fmt_short

    assert [fmt_short(n) for n in (0, 640, 36_928, 31_030_658, 300_856_848_896, 999_960)] == \
        ["0", "640", "36.9k", "31.0M", "300.9G", "1.0M"]
