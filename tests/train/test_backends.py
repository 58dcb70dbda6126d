"""The losses and metrics in a user's own compile/fit on TensorFlow, JAX and PyTorch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

SCRIPT = r"""
import json, sys
import numpy as np
import archgen, archgen.losses, archgen.metrics
from archgen.train import scores

model = archgen.build_model("{input: {shape: [16, 16, 1]}, encoder: {depth: 1, filters: 4}, heads: [{name: logits, filters: 3}]}")
model.compile(optimizer="adam", loss={"logits": archgen.losses.DiceCE(include_background=False)},
              metrics={"logits": [archgen.metrics.DiceScore(3), archgen.metrics.IoUScore(3, class_id=1)]})
rng = np.random.default_rng(0)
x = rng.normal(size=(4, 16, 16, 1)).astype("float32")
y = rng.integers(0, 3, (4, 16, 16)).astype("int32")
history = model.fit(x, y, batch_size=2, epochs=2, verbose=0)
result = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)
pred = model.predict(x, verbose=0)
tally = scores.counts(np.argmax(pred, -1), y, 3)
print(json.dumps({"loss": history.history["loss"], "dice": result["dice"],
                  "numpy_dice": scores.mean_foreground(scores.dice(tally)),
                  "iou": result["iou"], "numpy_iou": float(np.nan_to_num(scores.iou(tally)[1], nan=1.0))}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_losses_and_metrics_in_compile_and_fit(backend):
    pytest.importorskip(backend)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(math.isfinite(v) and 0 < v < 3 for v in result["loss"])
    assert result["dice"] == pytest.approx(result["numpy_dice"], abs=1e-5)
    assert result["iou"] == pytest.approx(result["numpy_iou"], abs=1e-5)
