"""A run killed outright (SIGKILL) resumes from its last whole checkpoint and ends as an unbroken run does."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.train.helpers import shapes
from tests.train.test_train_cli import CONFIG

STEPS = ["train.steps=30", "train.steps_per_epoch=5"]


def archgen(*args: str, cwd) -> subprocess.Popen:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "archgen.cli", "train", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def log(run) -> list[dict]:
    with open(run / "log.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_a_killed_run_resumes_and_ends_as_an_unbroken_one(tmp_path):
    (tmp_path / "tiny.yaml").write_text(CONFIG)
    shapes(tmp_path / "data", count=8)
    common = ["tiny.yaml", "--data", "data", "-q", "--json", *STEPS]
    unbroken = archgen(*common, "-o", "whole", cwd=tmp_path)
    out, err = unbroken.communicate(timeout=600)
    assert unbroken.returncode == 0, err

    killed = archgen(*common, "-o", "run", cwd=tmp_path)
    checkpoints = tmp_path / "run" / "checkpoints"

    def done() -> int:  # the highest whole checkpoint: a step folder is renamed into place whole
        steps = [int(p.name[5:]) for p in checkpoints.glob("step_*")] if checkpoints.is_dir() else []
        return max(steps, default=0)

    deadline = time.monotonic() + 600
    while done() < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)  # about when the next epoch's checkpoint is being written
    killed.communicate()
    assert 10 <= done() < 30 and not (tmp_path / "run" / "metrics.json").exists()

    resumed = archgen(*common, "-o", "run", "--resume", cwd=tmp_path)
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    result = json.loads(out)
    assert result["steps"] == 30 and result["epochs"] == 6
    rows, whole = log(tmp_path / "run"), log(tmp_path / "whole")
    assert [r["step"] for r in rows] == [str(s) for s in range(5, 35, 5)]  # each epoch once
    for a, b in zip(rows, whole):  # the same batches in the same order, the same optimizer state
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5)
    leftovers = [p.name for p in (tmp_path / "run").rglob(".*tmp*")]
    assert leftovers == []


@pytest.mark.slow
def test_resume_after_a_short_last_epoch_trains_to_the_steps_asked(cli, tmp_path, monkeypatch):
    """6 steps in epochs of 4 end with a short epoch; resumed to 12, then 13, the run trains exactly
    to each total (the epochs left are counted from the steps left)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tiny.yaml").write_text(CONFIG)
    shapes(tmp_path / "data", count=8)
    common = ["train", "tiny.yaml", "--data", "data", "-o", "run", "-q", "--json", "train.steps_per_epoch=4"]
    for steps, resume, epochs in ((6, [], 2), (12, ["--resume"], 4), (13, ["--resume"], 5)):
        code, out, err = cli(*common, "--steps", str(steps), *resume)
        assert code == 0, err
        result = json.loads(out)
        assert (result["steps"], result["epochs"]) == (steps, epochs)
    assert [int(row["step"]) for row in log(tmp_path / "run")] == [4, 6, 10, 12, 13]
