"""Data-parallel training through Keras's distribution API: JAX on two CPU devices (XLA's forced
host device count), against the same run on one device."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.train.helpers import shapes
from tests.train.test_train_cli import CONFIG

pytestmark = pytest.mark.slow


def archgen(cwd, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "archgen.cli", "train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def losses(run) -> list[float]:
    with open(run / "log.csv") as handle:
        return [float(row["loss"]) for row in csv.DictReader(handle)]


@pytest.fixture
def workdir(tmp_path):
    pytest.importorskip("jax")
    (tmp_path / "tiny.yaml").write_text(CONFIG)
    shapes(tmp_path / "data", count=8)
    return tmp_path


def test_two_devices_train_as_one_does(workdir):
    both = archgen(workdir, "tiny.yaml", "--data", "data", "-o", "two", "-q", "--json")
    assert both.returncode == 0, both.stderr
    assert both.stderr == ""  # no back-end chatter
    one = archgen(workdir, "tiny.yaml", "--data", "data", "-o", "one", "-q", "--json", "train.distribute=off")
    assert one.returncode == 0, one.stderr
    assert json.loads(both.stdout)["devices"] == 2 and json.loads(one.stdout)["devices"] == 1
    # the same batches split over two devices: the same gradients up to the order of the sums
    assert losses(workdir / "two") == pytest.approx(losses(workdir / "one"), rel=1e-4)
    assert json.loads(both.stdout)["val_dice"] == pytest.approx(json.loads(one.stdout)["val_dice"], abs=1e-3)


def test_a_batch_the_devices_do_not_divide_is_refused_before_anything_is_written(workdir):
    proc = archgen(workdir, "tiny.yaml", "--data", "data", "-o", "run", "-q", "train.batch_size=3")
    assert proc.returncode == 2
    assert proc.stderr == "error: train.batch_size=3: must be a multiple of the 2 devices it is split over (or " \
                          "train.distribute=off)\n"
    assert not (workdir / "run").exists()
