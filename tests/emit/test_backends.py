"""One config on every installed Keras back end: same layers, same params, same outputs.

Each back end runs in its own process (Keras fixes its back end at import). The TensorFlow
model's weights are copied to the others; outputs must agree within 1e-4 (float32).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CONF, ROOT

OTHERS = [b for b in ("jax", "torch") if importlib.util.find_spec(b) is not None]
CASES = [
    ("unet.yaml", ["input.shape=[188,188,1]"]),
    ("unet_bn_residual.yaml", ["input.shape=[32,48,3]", "encoder.filters=4"]),
    ("attention_unet.yaml", ["input.shape=[32,32,3]", "encoder.filters=4", "encoder.depth=2"]),
    ("unet3d.yaml", ["input.shape=[92,92,92,3]", "encoder.filters=[4,8,16,32]"]),
    ("peers/smp_unet_resnet50.yaml", ["input.shape=[64,96,3]", "encoder.name=mobilenetv3small"]),
    ("peers/kuc_r2_unet_2d.yaml", ["input.shape=[32,32,3]"]),
    ("peers/kuc_transunet_2d.yaml", ["input.shape=[32,32,3]", "encoder.block.se={ratio: 8}"]),
    # attention without biases and archgen's Bias layer (its output bias), the transformer on the input
    ("peers/monai_unetr_2d.yaml", ["input.shape=[32,48,1]", "encoder.layers=10"]),
    # archgen's WindowAttention (padded, shifted windows) and PatchMerge
    ("peers/monai_swin_unetr_2d.yaml", ["input.shape=[64,96,1]"]),
    # archgen's DepthwiseConvTranspose (MedNeXt's up blocks), GlobalResponseNorm and LinearUpSampling (trilinear)
    ("peers/monai_mednext_s_k3_3d.yaml", ["input.shape=[16,16,16,1]", "encoder.block.global_resp_norm=true"]),
    ("peers/monai_segresnet_3d.yaml", ["input.shape=[32,32,32,1]"]),
    ("unet1d.yaml", []),
    # several heads: instance's three, the deep supervision of UNet++ and UNet 3+
    ("instance.yaml", ["input.shape=[64,64,3]"]),
    ("unet_plus_plus.yaml", ["input.shape=[188,188,1]", "encoder.filters=8"]),
    ("unet3plus.yaml", ["input.shape=[64,64,1]", "encoder.filters=8"]),
    ("peers/monai_dynunet_2d.yaml", ["input.shape=[64,64,1]"]),
    ("peers/monai_basicunet_2d.yaml", ["input.shape=[32,32,1]"]),
    ("peers/monai_unet_2d_stride_one.yaml", []),  # per-axis output padding of a transposed conv
    ("peers/monai_segresnet_2d.yaml", ["input.shape=[32,32,1]"]),
    ("peers/smp_unet_seresnet18.yaml", ["input.shape=[64,64,3]"]),  # squeeze-and-excitation, pre-activation
]
# One process per back end builds every case (importing a back end takes seconds; a case, less);
# a case that fails writes its traceback, and only its test fails.
SCRIPT = """
import json, os, sys, traceback
import numpy as np
from archgen.backend import import_keras, select_backend
select_backend(sys.argv[1])
keras = import_keras()
from archgen.emit import emit_model
from archgen.planner import make_plan
from archgen.config import load_spec
for config, overrides, folder in json.loads(sys.argv[2]):
    try:
        keras.backend.clear_session()
        plan = make_plan(load_spec(config, overrides))
        model = emit_model(plan)
        # A backbone outputs its taps, the deepest (the plan's shape for it) last.
        layers = {l.name: [list((l.output[-1] if isinstance(l.output, list) else l.output).shape[1:]),
                           l.count_params()] for l in model.layers}
        weights = os.path.join(folder, "weights.npz")
        if sys.argv[1] == "tensorflow":
            np.savez(weights, *model.get_weights())
        else:
            saved = np.load(weights)
            model.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
        y = model.predict(np.load(os.path.join(folder, "x.npy")), verbose=0)
        heads = y if isinstance(y, dict) else dict(enumerate(y)) if isinstance(y, (list, tuple)) else {0: y}
        np.savez(os.path.join(folder, sys.argv[1] + ".npz"), **{str(k): v for k, v in heads.items()})
        result = {"layers": layers, "total": model.count_params()}
    except Exception:
        result = {"error": traceback.format_exc()}
    json.dump(result, open(os.path.join(folder, sys.argv[1] + ".json"), "w"))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    """Every case's plan, and the case built on every installed back end: ``{case: plan}`` under
    ``"plans"``, ``{(case, backend): (result, folder)}`` beside it."""
    from archgen.config import load_spec
    from archgen.planner import make_plan

    jobs, plans = [], {}
    for i, (config, overrides) in enumerate(CASES):
        folder = tmp_path_factory.mktemp(f"case{i}")
        plan = plans[i] = make_plan(load_spec(CONF / config, overrides))
        np.save(folder / "x.npy", np.random.default_rng(3).normal(size=(1, *plan.input_shape)).astype("float32"))
        jobs.append((str(CONF / config), overrides, str(folder)))
    out: dict = {"plans": plans}
    for backend in ("tensorflow", *OTHERS):  # TensorFlow first: it writes the weights the others load
        result = subprocess.run([sys.executable, "-c", SCRIPT, backend, json.dumps(jobs)], cwd=ROOT,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        for i, (_, _, folder) in enumerate(jobs):
            out[i, backend] = json.loads((Path(folder) / f"{backend}.json").read_text()), Path(folder)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case", range(len(CASES)), ids=[c for c, _ in CASES])
def test_same_model_on_every_installed_back_end(case, built):
    if not OTHERS:
        pytest.fail("no second Keras back end installed: pip install 'archgen[jax]' or torch==2.13.0")
    plan = built["plans"][case]
    expected = {layer.name: [list(layer.shape), layer.params] for layer in plan.layers}
    reference, folder = built[case, "tensorflow"]
    assert "error" not in reference, reference.get("error")
    assert reference["layers"] == expected
    for backend in OTHERS:
        got, _ = built[case, backend]
        assert "error" not in got, (backend, got.get("error"))
        assert got["layers"] == expected, backend
        assert got["total"] == plan.total_params
        outputs, expected_outputs = np.load(folder / f"{backend}.npz"), np.load(folder / "tensorflow.npz")
        assert sorted(outputs.files) == sorted(expected_outputs.files), backend
        for head in expected_outputs.files:
            np.testing.assert_allclose(outputs[head], expected_outputs[head], atol=1e-4, rtol=1e-4,
                                       err_msg=f"{backend}, output {head}")


def test_backend_not_installed_names_the_extra(monkeypatch):
    from archgen.backend import select_backend
    from archgen.errors import ArchgenError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ArchgenError, match=r"pip install 'archgen\[jax\]'"):
        select_backend("jax")


def test_backend_cannot_change_once_keras_is_loaded(monkeypatch):
    pytest.importorskip("keras")
    from archgen.backend import select_backend
    from archgen.errors import ArchgenError

    other = "jax" if sys.modules["keras"].backend.backend() != "jax" else "torch"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    with pytest.raises(ArchgenError, match="already running on"):
        select_backend(other)
