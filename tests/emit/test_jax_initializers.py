"""On JAX, initial weights are drawn with NumPy while the model is built (archgen/emit/initialize.py):
the same distributions as TensorFlow's build, the same saved configuration, repeatable under
keras.utils.set_random_seed, and JAX's own sampling restored afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytest.importorskip("jax")

WORKER = """
import json, sys
import numpy as np
from archgen.backend import import_keras, select_backend
select_backend(sys.argv[1])
keras = import_keras()
from archgen.emit import emit_model
from archgen.planner import make_plan
from archgen.config import load_spec
plan = make_plan(load_spec("conf/unet_bn_residual.yaml"))
keras.utils.set_random_seed(7)
model = emit_model(plan)
keras.utils.set_random_seed(7)
again = emit_model(plan)
stats = {}
for layer in model.layers:
    for w, w2 in zip(layer.weights, again.get_layer(layer.name).weights):
        a = np.asarray(w.numpy() if hasattr(w, "numpy") else w)
        stats[w.path] = {"n": int(a.size), "mean": float(a.mean()), "std": float(a.std()),
                         "absmax": float(np.abs(a).max()), "same_again": bool(np.array_equal(a, np.asarray(w2)))}
configs = {l.name: {k: v for k, v in l.get_config().items() if k.endswith("initializer")} for l in model.layers}
restored = True
if sys.argv[1] == "jax":
    from keras.src.backend.jax import random as jr
    restored = jr.uniform.__module__.startswith("keras")
print(json.dumps({"stats": stats, "configs": configs, "restored": restored}))
"""


ENV = {**{k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}, "TF_CPP_MIN_LOG_LEVEL": "3"}


def build(backend: str) -> dict:
    out = subprocess.run([sys.executable, "-c", WORKER, backend], cwd=ROOT, capture_output=True, text=True,
                         env=ENV, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_jax_weights_have_tensorflows_distributions_and_config():
    tf, jax = build("tensorflow"), build("jax")
    assert jax["restored"]
    assert jax["configs"] == tf["configs"]  # the saved file names the same initializers
    assert tf["stats"].keys() == jax["stats"].keys()
    for path, ours in jax["stats"].items():
        theirs = tf["stats"][path]
        assert ours["n"] == theirs["n"]
        assert ours["same_again"], f"{path}: not repeatable under set_random_seed"
        if theirs["std"] == 0:  # zeros and ones (biases, norm parameters)
            assert ours["std"] == 0 and ours["mean"] == theirs["mean"], path
            continue
        tolerance = 0.15 if ours["n"] < 5_000 else 0.04  # sampling error of a standard deviation
        assert abs(ours["std"] / theirs["std"] - 1) < tolerance, (path, ours, theirs)
        assert abs(ours["mean"]) < 4 * theirs["std"] / ours["n"] ** 0.5 + 1e-6, (path, ours)
        assert ours["absmax"] <= theirs["absmax"] * 1.05 + 1e-6 or ours["n"] < 5_000, (path, ours, theirs)
