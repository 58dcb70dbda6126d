"""``archgen train -m``: every variant trained, the results ranked by validation Dice, failures isolated,
on the basic, joblib and Ray launchers."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from archgen.train.sweep import keep_to_one_gpu, ranked
from tests.conftest import CONF
from tests.train.helpers import shapes
from tests.train.test_train_cli import CONFIG


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(CONFIG)
    shapes(tmp_path / "data", count=8)
    return tmp_path


def read_csv(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


def check_ranked(folder: Path, swept: list[str], count: int) -> list[dict]:
    rows = read_csv(folder / "results.csv")
    assert list(rows[0])[:2 + len(swept)] == ["rank", "job", *swept]
    assert {"val_dice", "val_loss", "params", "flops", "seconds", "status"} <= set(rows[0])
    ok = [r for r in rows if r["status"] == "ok"]
    dice = [float(r["val_dice"]) for r in ok]
    assert dice == sorted(dice, reverse=True)  # best first
    assert [r["rank"] for r in ok] == [str(i) for i in range(1, len(ok) + 1)]
    assert len(rows) == count
    saved = json.loads((folder / "results.json").read_text())
    assert [r["job"] for r in saved] == [int(r["job"]) for r in rows]
    for row in ok:
        assert (Path(row["run_dir"]) / "model.keras").is_file()
    return rows


@pytest.mark.slow
def test_a_sweep_trains_every_variant_and_ranks_them(cli, workdir):
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "sweep", "-m", "encoder.depth=1,2",
                         "encoder.filters=2,4", "--steps", "6", "-q")
    assert code == 0, err
    rows = check_ranked(workdir / "sweep", ["encoder.depth", "encoder.filters"], 4)
    assert {(r["encoder.depth"], r["encoder.filters"]) for r in rows} == {("1", "2"), ("1", "4"), ("2", "2"),
                                                                            ("2", "4")}
    assert out.splitlines()[0].rstrip() == "4 variants in sweep, best first"
    assert "results: sweep/results.csv (and results.json)" in out


@pytest.mark.slow
def test_a_failing_variant_is_a_row_and_the_others_train(cli, workdir):
    code, out, err = cli("train", "tiny.yaml", "--data", "data", "-o", "sweep", "-m", "encoder.depth=1,9",
                         "--steps", "6", "-q", "--json")
    assert code == 1 and err.endswith("error: 1 of 2 variants failed\n")
    result = json.loads(out)
    assert result["command"] == "train" and result["failed"] == 1
    first, last = result["rows"]
    assert first["status"] == "ok" and first["rank"] == 1 and first["val_dice"] is not None
    assert last["status"] == "error" and "encoder.depth" in last["error"] and last["rank"] is None
    check_ranked(workdir / "sweep", ["encoder.depth"], 2)


@pytest.mark.slow
def test_a_sweep_on_joblib_workers(cli, workdir):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-o", "sweep", "-m", "encoder.depth=1,2",
                       "--steps", "6", "-q", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert code == 0, err
    rows = check_ranked(workdir / "sweep", ["encoder.depth"], 2)
    pids = {(workdir / "sweep" / r["job"] / "started").read_text() for r in rows}
    assert str(os.getpid()) + "\n" not in pids  # trained in the workers, not here


@pytest.mark.slow
def test_a_sweep_on_a_ray_cluster_of_this_machine(workdir):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="see the README: hydra-ray-launcher and ray")
    from tests.test_sweep_ray import child_env

    temp = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp" if os.path.isdir("/tmp") else None))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "archgen.cli", "train", "tiny.yaml", "--data", "data", "-o", "sweep", "-m",
             "encoder.depth=1,2", "--steps", "6", "-q", "hydra/launcher=ray_local", f"hydra.searchpath=[file://{CONF}]",
             f"+hydra.launcher.ray.init._temp_dir={temp}"],
            cwd=workdir, capture_output=True, text=True, env=child_env(), timeout=900, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        check_ranked(workdir / "sweep", ["encoder.depth"], 2)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


def test_resume_is_for_one_run(cli, workdir):
    code, _, err = cli("train", "tiny.yaml", "--data", "data", "-m", "encoder.depth=1,2", "--resume")
    assert code == 2
    assert err.startswith("error: --resume: continues one run; a sweep trains its variants afresh")


def test_ranking_puts_the_best_dice_first_then_the_failures():
    rows = [{"job": 0, "status": "ok", "val_dice": 0.5, "val_loss": 1.0},
            {"job": 1, "status": "error"},
            {"job": 2, "status": "ok", "val_dice": 0.9, "val_loss": 2.0},
            {"job": 3, "status": "ok", "val_dice": 0.9, "val_loss": 1.5},
            {"job": 4, "status": "killed"}]
    assert [r["job"] for r in ranked(rows)] == [3, 2, 0, 1, 4]
    regression = [{"job": 0, "status": "ok", "val_dice": None, "val_loss": 3.0},
                  {"job": 1, "status": "ok", "val_dice": None, "val_loss": 2.0}]
    assert [r["job"] for r in ranked(regression)] == [1, 0]
    diverged = [{"job": 0, "status": "ok", "val_dice": None, "val_loss": float("nan")},
                {"job": 1, "status": "ok", "val_dice": None, "val_loss": 2.0},
                {"job": 2, "status": "ok", "val_dice": float("nan"), "val_loss": 1.0}]
    assert [r["job"] for r in ranked(diverged)] == [2, 1, 0]  # NaN counts as no figure: last among the finished


def test_a_worker_keeps_to_one_gpu(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras", raising=False)  # as in a worker that has not imported it
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    keep_to_one_gpu(7)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    keep_to_one_gpu(2)  # one left: nothing to choose
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
