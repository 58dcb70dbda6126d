"""Saved models use only built-in layers: they load with safe_mode=True in a fresh process and
predict exactly what they predicted before saving."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import CONF

keras = pytest.importorskip("keras")

LOAD = """
import sys, numpy as np, keras
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
ys = model.predict(np.load(sys.argv[2]), verbose=0)
ys = ys if isinstance(ys, list) else [ys]
np.savez(sys.argv[3], *ys)
"""


@pytest.mark.slow
@pytest.mark.parametrize("config, overrides", [
    ("unet.yaml", ["input.shape=[188,188,1]", "encoder.filters=4"]),
    ("attention_unet.yaml", ["input.shape=[32,32,3]", "encoder.filters=4", "encoder.depth=2"]),
    ("unet_bn_residual.yaml", ["input.shape=[32,32,3]", "encoder.filters=4"]),
    ("instance.yaml", ["input.shape=[32,32,3]", "encoder.filters=4", "encoder.depth=2"]),
    ("unet1d.yaml", ["encoder.filters=4", "encoder.depth=2"]),
])
def test_saved_model_loads_safely_and_predicts_the_same(cli, tmp_path, config, overrides):
    target = tmp_path / "m.keras"
    code, _, err = cli("build", CONF / config, *overrides, "-o", target)
    assert code == 0, err
    model = keras.saving.load_model(target)
    x = np.random.default_rng(1).normal(size=(2, *model.input_shape[1:])).astype("float32")
    before = model.predict(x, verbose=0)
    before = before if isinstance(before, list) else [before]
    np.save(tmp_path / "x.npy", x)
    result = subprocess.run([sys.executable, "-c", LOAD, str(target), str(tmp_path / "x.npy"), str(tmp_path / "y.npz")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    after = np.load(tmp_path / "y.npz")
    for i, y in enumerate(before):
        np.testing.assert_allclose(after[f"arr_{i}"], y, rtol=1e-6, atol=1e-6)
