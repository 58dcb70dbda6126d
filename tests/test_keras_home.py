"""Commands write nothing into the user's home: Keras's settings file goes to a folder of the
process's own, removed at exit, unless the user has one (or KERAS_HOME) already."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def run_build(tmp_path, home, **extra):
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "KERAS_HOME"}
    env.update(HOME=str(home), TMPDIR=str(tmp), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    result = subprocess.run([sys.executable, "-m", "archgen.cli", "build", str(ROOT / "conf" / "unet.yaml"),
                             "encoder.depth=1", "encoder.filters=4", "padding=same", "input.shape=[32,32,1]",
                             "-o", str(tmp_path / "m.keras")], env=env, capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp


def test_build_writes_nothing_into_an_empty_home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    tmp = run_build(tmp_path, home)
    assert list(home.iterdir()) == []
    assert not [p for p in tmp.iterdir() if p.name.startswith("archgen-keras-")]  # removed at exit


def test_a_users_own_keras_settings_are_read_and_left_alone(tmp_path):
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    settings = '{"floatx": "float32", "epsilon": 1e-07, "backend": "tensorflow", "image_data_format": "channels_last"}'
    (home / ".keras" / "keras.json").write_text(settings)
    run_build(tmp_path, home)
    assert sorted(p.name for p in (home / ".keras").iterdir()) == ["keras.json"]
    assert (home / ".keras" / "keras.json").read_text() == settings
