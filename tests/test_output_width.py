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
    from archgen.config import load_spec

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


MANY = ["input.shape=[32,32,1],[512,512,3]", "encoder.filters=[4,8,16],[8,16,32]", "encoder.depth=2",
        "++encoder.block.norm=batch,group", "++decoder.upsample.type=transpose,resize"]


def test_a_sweep_of_many_keys_fits_80_columns_with_a_line_per_key(cli, tmp_path, monkeypatch):
    """Four swept keys need 114 columns side by side: the table gives each variant one column with
    a key=value line per swept key rather than running past the terminal (which would wrap it
    anywhere, inside a number too)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    code, out, _ = cli("summary", SAME, "-m", "-q", *MANY, "hydra.sweep.dir=s")
    assert code == 1  # group norm needs channels divisible by 8: the filters=4 variants fail
    text = re.sub(r"\x1b\[[0-9;]*m", "", out)
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    rows = json.loads((tmp_path / "s" / "results.json").read_text())
    lines = text.splitlines()
    for row in rows:
        start = next(i for i, line in enumerate(lines) if re.match(rf"\s+{row['job']}\s", line))
        block = "\n".join(lines[start:start + 4])
        for key, value in row["swept"].items():
            assert f"{key}={json.dumps(value, separators=(',', ':')).strip(chr(34))}" in block, (key, block)
        if row["status"] == "ok":
            assert re.search(r"\s\d+(\.\d)?k\s", lines[start]) and "x2" in lines[start]
    failure = next(i for i, line in enumerate(lines) if line.startswith("  job 2 (error): "))
    assert lines[failure + 1].startswith(" " * len("  job 2 (error): ") + "encoder.block.norm=group")


def test_summary_fit_keeps_each_size_with_its_unit(monkeypatch, capsys):
    from archgen.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    assert main(["summary", str(UNET), "--fit", "24GiB"]) == 0
    lines = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).splitlines()
    assert max(len(line) for line in lines) <= 80
    assert any(re.search(r"\(\d+\.\d\d GiB\)", line) for line in lines)  # the largest input's estimate, whole
    assert all(not re.search(r"\d$", line.rstrip()) or not nxt.lstrip().startswith(("GiB", "MiB"))
               for line, nxt in zip(lines, lines[1:]))


@pytest.mark.parametrize("family, spacing", [("plain", "0.7,0.7,1.0"), ("resenc_xl", "0.7,0.7,5.0")])
def test_auto_writes_lines_of_80_columns_with_numbers_and_lists_whole(cli, family, spacing):
    """`archgen auto` prints its config to the terminal: comments wrap at spaces outside lists, a
    stage line too long for 80 columns drops the spaces inside its lists."""
    import yaml

    for memory in ("nnunet", "archgen"):
        code, out, _ = cli("auto", "--shape", "512,512,384", "--spacing", spacing, "--classes", "3", "--family",
                           family, "--memory", memory)
        assert code == 0
        assert max(len(line) for line in out.splitlines()) <= 80
        flat = " ".join(line.lstrip("# ").strip() for line in out.splitlines() if line.startswith("#"))
        assert re.search(r"VRAM estimate fits: [\d,]+ feature-map elements vs reference [\d,]+ \(" if memory == "nnunet"
                         else r"batch of 2 fits the budget: [\d,]+ bytes \([\d.]+ GiB\) <= [\d,]+ bytes", flat), flat
        for line in out.splitlines():
            assert line.count("[") == line.count("]"), line  # no list split over two lines
        stages = yaml.safe_load(out)["encoder"]["stages"]
        assert len(stages) >= (6 if memory == "nnunet" else 5) and all(isinstance(s, dict) for s in stages)


def test_the_readmes_sweep_fits_80_columns_in_its_default_folder(cli, tmp_path, monkeypatch):
    """The sweep the README shows, in the default multirun/DATE/TIME folder: the results line
    names one file in full, the other by name, and stays within 80 columns like the rest."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    code, out, _ = cli("summary", UNET, "-m", "encoder.depth=3,4,5", "padding=valid,same", "-q")
    assert code == 1
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()
    assert max(len(line) for line in lines) <= 80
    (folder,) = (tmp_path / "multirun").glob("*/*")
    assert lines[-1] == f"results: {folder.relative_to(tmp_path)}/results.csv (and results.json)"
