"""build --format: SavedModel, ONNX and LiteRT exports of the seed U-Net give Keras's outputs."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import CONF

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

SEED_SMALL = [CONF / "unet.yaml", "input.shape=[188,188,1]"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from archgen.cli import main

    out = tmp_path_factory.mktemp("export") / "unet"
    formats = [a for f in ("keras", "saved_model", "onnx", "litert") for a in ("--format", f)]
    assert main(["build", *map(str, SEED_SMALL), "-o", str(out), *formats]) == 0
    model = keras.saving.load_model(out.with_suffix(".keras"))
    x = np.random.default_rng(2).normal(size=(1, 188, 188, 1)).astype("float32")
    return out, x, model.predict(x, verbose=0)


@pytest.mark.slow
def test_saved_model_matches(exported):
    out, x, expected = exported
    loaded = tf.saved_model.load(str(out.with_name("unet_saved_model")))
    np.testing.assert_allclose(loaded.serve(x).numpy(), expected, atol=1e-4)


@pytest.mark.slow
def test_onnx_matches_under_onnxruntime(exported):
    ort = pytest.importorskip("onnxruntime", reason="pip install 'archgen[onnx]'")
    out, x, expected = exported
    session = ort.InferenceSession(str(out.with_suffix(".onnx")))
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(y, expected, atol=1e-4)


@pytest.mark.slow
def test_litert_matches(exported):
    out, x, expected = exported
    interpreter = tf.lite.Interpreter(str(out.with_suffix(".tflite")))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    y = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(y, expected, atol=1e-4)


@pytest.mark.slow
def test_saved_model_folder_is_replaced_only_with_force(cli, tmp_path):
    args = ["build", CONF / "unet_same.yaml", "input.shape=[32,32,1]", "encoder.filters=2", "-o", tmp_path / "m",
            "--format", "saved_model"]
    assert cli(*args)[0] == 0
    marker = tmp_path / "m_saved_model" / "saved_model.pb"
    before = marker.read_bytes()
    code, _, err = cli(*args)
    assert code == 2 and "--force" in err
    assert cli(*args, "encoder.filters=4", "--force")[0] == 0
    assert marker.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m_saved_model"]


def test_output_suffix_is_checked(cli, tmp_path):
    code, _, err = cli("build", CONF / "unet.yaml", "-o", tmp_path / "m.h5")
    assert code == 2 and "must end in .keras, .onnx or .tflite" in err
