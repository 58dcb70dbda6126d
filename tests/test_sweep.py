"""Hydra multirun sweeps: one results table, failures isolated, basic / joblib / submitit launchers."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from tests.conftest import CONF
from tests.reference.seed_unet_counts import seed_unet_params

SAME = CONF / "unet_same.yaml"
# Four variants, two of them illegal (30 is not a multiple of 4 for depth 2).
VARIANTS = ["input.shape=[32,32,1],[30,30,1]", "encoder.filters=2,4", "encoder.depth=2"]


def sweep_dir(root: Path) -> Path:
    (found,) = list((root / "multirun").glob("*/*"))
    return found


def check_table(root: Path, err: str, *, built: bool) -> list[dict]:
    folder = sweep_dir(root)
    rows = json.loads((folder / "results.json").read_text())
    with (folder / "results.csv").open() as fh:
        table = list(csv.DictReader(fh))
    assert len(rows) == len(table) == 4
    assert [r["status"] for r in rows] == [t["status"] for t in table] == ["ok", "ok", "error", "error"]
    assert all("input.shape=[30,30,1]" in r["overrides"] for r in rows if r["status"] == "error")
    assert all("enc2_pool gets 15" in r["error"] for r in rows if r["status"] == "error")
    assert "2 of 4 variants failed" in err
    for row in rows[:2]:
        job = folder / str(row["job"])
        assert (job / "plan.json").exists() and (job / ".hydra" / "config.yaml").exists()
        assert json.loads((job / "plan.json").read_text())["total_params"] == row["total_params"]
        if built:
            import keras

            model = keras.saving.load_model(row["model"], safe_mode=True)
            assert model.count_params() == row["total_params"] == row["keras_params"]
    return rows


def test_summary_sweep_plans_in_process(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("summary", SAME, "-m", "--job-files", *VARIANTS)
    assert code == 1
    rows = check_table(tmp_path, err, built=False)
    # conf/unet_same.yaml is the seed U-Net with same padding: the same layers, counted by hand
    assert [r["total_params"] for r in rows[:2]] == [seed_unet_params(depth=2, filters=f) for f in (2, 4)]
    assert "4 variants in multirun" in out and "results.csv" in out
    assert "[0] input.shape=[32,32,1] encoder.filters=2 encoder.depth=2: ok" in err


def test_summary_sweep_never_imports_tensorflow(tmp_path):
    import subprocess
    import sys

    code = ("import sys; from archgen.cli import main; "
            f"rc = main(['summary', {str(SAME)!r}, '-m', '-q', 'encoder.depth=range(1,5)', 'padding=valid,same']); "
            "assert not [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')]; sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1, result.stderr  # valid padding at 512 fails for depths 3 and 4
    rows = json.loads((sweep_dir(tmp_path) / "results.json").read_text())
    assert len(rows) == 8 and sum(r["status"] == "ok" for r in rows) == 6


def test_summary_sweep_equals_the_hydra_launcher_path(cli, tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    cli("summary", SAME, "-m", "-q", *VARIANTS)
    fast = json.loads((sweep_dir(tmp_path / "a") / "results.json").read_text())
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "b")
    cli("summary", SAME, "-m", "-q", *VARIANTS, "hydra/launcher=basic")
    hydra = json.loads((sweep_dir(tmp_path / "b") / "results.json").read_text())
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(fast) == strip(hydra)


@pytest.mark.slow
def test_build_sweep_basic_launcher(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("build", SAME, "-m", *VARIANTS)
    assert code == 1
    check_table(tmp_path, err, built=True)


@pytest.mark.slow
def test_build_sweep_joblib_launcher(cli, tmp_path, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="pip install 'archgen[joblib]'")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli("build", SAME, "-m", *VARIANTS, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert code == 1
    check_table(tmp_path, err, built=True)


@pytest.mark.slow
def test_summary_sweep_submitit_local_launcher(tmp_path):
    """Through conf/hydra/launcher/local_processes.yaml. In a child process: submitit's workers
    write to the stderr they were started with, which pytest's capture closes between tests."""
    import subprocess
    import sys

    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install 'archgen[submitit]'")
    result = subprocess.run([sys.executable, "-m", "archgen.cli", "summary", str(SAME), "-m", *VARIANTS,
                             "hydra/launcher=local_processes"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    check_table(tmp_path, result.stderr, built=False)


@pytest.mark.slow
def test_a_crash_inside_keras_is_a_row(cli, tmp_path, monkeypatch):
    import archgen.emit

    real = archgen.emit.emit_model

    def flaky(plan, *args):
        if plan.layer("enc1_conv1").shape[-1] == 4:
            raise RuntimeError("simulated failure inside Keras")
        return real(plan, *args)

    monkeypatch.setattr(archgen.emit, "emit_model", flaky)
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("build", SAME, "-m", "-q", "input.shape=[32,32,1]", "encoder.filters=2,4", "encoder.depth=2")
    rows = json.loads((sweep_dir(tmp_path) / "results.json").read_text())
    assert code == 1 and "1 of 2 variants failed" in err
    assert [r["status"] for r in rows] == ["ok", "crash"]
    assert rows[1]["error"] == "RuntimeError: simulated failure inside Keras"


def test_a_job_that_left_no_result_is_a_killed_row(tmp_path):
    from archgen.sweep import collect_results

    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    (tmp_path / "0" / ".hydra" / "overrides.yaml").write_text("- encoder.depth=9\n")
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "result.json").write_text(json.dumps({"job": 1, "overrides": "", "status": "ok"}))
    rows = collect_results(tmp_path)
    assert [(r["job"], r["status"]) for r in rows] == [(0, "killed"), (1, "ok")]
    assert rows[0]["overrides"] == "encoder.depth=9"


def test_a_variant_whose_job_left_no_folder_is_a_killed_row_too(tmp_path):
    """A worker killed before Hydra made the job's folder: the variant still has its row."""
    from archgen.sweep import collect_results

    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "result.json").write_text(json.dumps({"job": 1, "overrides": "encoder.depth=2", "status": "ok"}))
    variants = [["++encoder.depth=1", "hydra/launcher=joblib"], ["++encoder.depth=2", "hydra/launcher=joblib"],
                ["++encoder.depth=3", "hydra.launcher.n_jobs=2"]]
    rows = collect_results(tmp_path, 3, ["encoder.depth"], variants=variants)
    assert [(r["job"], r["status"]) for r in rows] == [(0, "killed"), (1, "ok"), (2, "killed")]
    assert [rows[0]["overrides"], rows[2]["overrides"]] == ["encoder.depth=1", "encoder.depth=3"]
    assert rows[2]["swept"] == {"encoder.depth": 3}


def test_bad_sweep_override_is_a_clear_error(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("summary", SAME, "-m", "encoder.depth=range(")
    assert code == 2 and err.startswith("error: overrides")


def test_results_csv_has_a_column_per_swept_key_and_whole_errors(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli("summary", SAME, "-m", "-q", *VARIANTS)
    with (sweep_dir(tmp_path) / "results.csv").open() as fh:
        reader = csv.DictReader(fh)
        table = list(reader)
    assert reader.fieldnames == ["job", "input.shape", "encoder.filters", "overrides", "status", "total_params",
                                 "outputs", "total_flops", "activation_bytes", "seconds", "error"]
    assert [(t["input.shape"], t["encoder.filters"]) for t in table] == [
        ("[32,32,1]", "2"), ("[32,32,1]", "4"), ("[30,30,1]", "2"), ("[30,30,1]", "4")]
    assert table[0]["overrides"] == "input.shape=[32,32,1] encoder.filters=2 encoder.depth=2"
    assert json.loads(table[0]["outputs"]) == {"logits": [32, 32, 2]}
    for row in table[2:]:  # the whole message: first line and the hint lines
        assert "enc2_pool gets 15" in row["error"]
        assert "legal sizes: H = 4k, k >= 1; nearest: 28 (output 28), 32 (output 32)" in row["error"]


def test_progress_bar_on_a_terminal_and_lines_otherwise(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: stderr counts as a terminal
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    code, out, err = cli("summary", SAME, "-m", *VARIANTS, "hydra.sweep.dir=a")
    assert code == 1
    assert "4/4" in err and "2 failed" in err and "eta" in err  # done/total, failures so far, ETA
    assert "[0] input.shape" not in err  # the bar replaces the lines
    code, out, err = cli("summary", SAME, "-m", "-q", *VARIANTS, "hydra.sweep.dir=b")
    assert "4/4" not in err and "[0]" not in err and err.strip() == "error: 2 of 4 variants failed"
    monkeypatch.delenv("TTY_COMPATIBLE")
    monkeypatch.delenv("TTY_INTERACTIVE")
    code, out, err = cli("summary", SAME, "-m", *VARIANTS, "hydra.sweep.dir=c")
    assert "4/4" not in err and "[3] input.shape=[30,30,1] encoder.filters=4 encoder.depth=2: error" in err


def test_the_table_lists_finished_variants_then_failures_by_job(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, _ = cli("summary", SAME, "-m", "-q", "input.shape=[30,30,1],[32,32,1]", "encoder.filters=2,4",
                       "encoder.depth=2")
    jobs = [m.group(1) for m in (re.match(r"\s+(\d+)\s+\[3", line) for line in out.splitlines()) if m]
    assert jobs == ["2", "3", "0", "1"]
    assert "2 failed:" in out and out.index("2 failed:") > out.index("  1  ")
    assert "nearest: 28 (output 28), 32 (output 32)" in out


def test_a_plan_only_sweep_writes_its_rows_and_nothing_else_by_default(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("summary", SAME, "-m", "-q", *VARIANTS)
    assert code == 1
    folder = sweep_dir(tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["results.csv", "results.json"]
    assert len(json.loads((folder / "results.json").read_text())) == 4


@pytest.mark.parametrize("variant", [
    ["++encoder.depth=3", "++padding=valid"],
    ["++decoder.upsample={type: resize, interpolation: bilinear}"],  # a mapping merges into the one there
    ["++encoder.block={norm: batch}", "++heads.0.filters=5"],
    ["++input.shape=[64,64,3]", "++heads=[{name: a, filters: 1}, {name: b, filters: 2}]"],
    ["++encoder.filters=[4,8,16,32,64]", "++new.key.deep=1"],
    ["++name=other", "~padding"],  # a delete: left to OmegaConf
    ["+extra=1"],
    ["++encoder.depth=${padding}"],
])
def test_the_plain_override_path_equals_omegaconfs(variant):
    """Plan-only sweeps apply ++key=value to plain data; the result must be what Hydra's own
    override code makes of the same overrides with OmegaConf."""
    from omegaconf import OmegaConf

    from archgen.compat.hydra import apply_overrides
    from archgen.config.load import read_config_file, resolve
    from archgen.sweep import parsed_override, variant_config

    data = read_config_file(SAME)
    cfg = OmegaConf.create(data)
    try:
        apply_overrides([parsed_override(o) for o in variant], cfg)
        expected = resolve(cfg)
    except Exception:  # noqa: BLE001 - then both paths must refuse it
        with pytest.raises(Exception):
            variant_config(data, variant)
        return
    assert variant_config(data, variant) == expected
    assert data == read_config_file(SAME)  # the base data is never changed


@pytest.mark.parametrize("wide", [False, True])
def test_markup_and_emoji_codes_in_values_are_shown_as_typed(capsys, monkeypatch, wide):
    """Every text in the results table came from the command line: rich must print it as typed,
    not read ``[link=...]`` or ``[bold]`` as markup or ``:smile:`` as an emoji."""
    from archgen.sweep import print_results

    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # styles on: markup taken as markup would turn into escapes
    monkeypatch.setenv("COLUMNS", "200")
    rows = [{"job": 0, "overrides": "note=[link=https://x]x[/link] name=[bold red]x[/]", "status": "ok",
             "swept": {"note": "[link=https://x]x[/link]", "name": "[bold red]x[/]"}, "total_params": 10,
             "outputs": {"logits": [32, 32, 2]}, "total_flops": 5, "activation_bytes": 100, "seconds": 0.1},
            {"job": 1, "overrides": "note=:smile: name=[/]", "status": "error", "seconds": 0.1,
             "swept": {"note": ":smile:", "name": "[/]"}, "error": "name=[/]: :cat: [blink]is not a name[/blink]"}]
    print_results(rows, Path("[bold]s[/] :dog:"), ["note", "name"], ["tag=':warning: [red]r[/red]'"], wide)
    out = capsys.readouterr().out
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)
    for text in ["[link=https://x]x[/link]", "[bold red]x[/]", ":smile:", "[/]", ":cat: [blink]is not a name[/blink]",
                 "2 variants in [bold]s[/] :dog:", "[bold]s[/] :dog:/results.csv",
                 "every variant: tag=':warning: [red]r[/red]'"]:
        assert text in plain, text
    assert "\x1b]8;" not in out  # no hyperlink was made
    assert not any(ord(c) > 0x2500 and c not in "─━│┃" for c in plain), plain  # no emoji
