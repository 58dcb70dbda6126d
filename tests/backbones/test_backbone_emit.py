"""A keras.applications encoder built by the emitter: the plan's shapes and counts, a saved model that
loads in safe mode, weights from a local file, and which stages learn."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.errors import EmitError
from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF
from tests.peers.common import keras_counts

keras = pytest.importorskip("keras")
from archgen.emit import emit_model  # noqa: E402

SMP = CONF / "peers" / "smp_unet_resnet50.yaml"


def plan(*overrides: str):
    return make_plan(load_spec(SMP, list(overrides)))


def assert_backbone_model_matches_plan(model, p):
    """Every layer of the plan is a layer of the model with its shape and count; the backbone is one
    nested model whose outputs are the taps."""
    layers = {layer.name: layer for layer in model.layers}
    assert sorted(layers) == sorted(layer.name for layer in p.layers)
    taps = [layer for layer in p.layers if layer.kind == "tap"]
    for lp in p.layers:
        layer = layers[lp.name]
        assert layer.count_params() == lp.params, lp.name
        if lp.kind == "backbone":
            shapes = [tuple(t.shape[1:]) for t in layer.output]
            assert [shapes[t.attrs["index"]] for t in taps] == [t.shape for t in taps]
        else:
            assert tuple(layer.output.shape[1:]) == lp.shape, lp.name
    assert model.count_params() == p.total_params


@pytest.mark.parametrize("overrides", [
    ["input.shape=[64,96,3]"],
    ["input.shape=[32,32,1]", "encoder.name=mobilenetv3small", "+encoder.adapter=true", "decoder.skips=[2,4]"],
    # The U-Net decoder's newer blocks and options, under a backbone
    ["input.shape=[32,32,3]", "encoder.name=mobilenetv3small", "+decoder.block={se: {ratio: 4}, order: act_norm}",
     "+decoder.last_conv_only=true", "decoder.upsample={type: resize, norm: batch}"],
    ["input.shape=[32,32,3]", "encoder.name=mobilenetv3small", "+decoder.block={type: recurrent_residual}"],
])
def test_keras_builds_the_plan(overrides):
    p = plan(*overrides)
    model = emit_model(p)
    assert_backbone_model_matches_plan(model, p)
    y = model(np.zeros((1, *p.input_shape), "float32"))
    assert tuple(y.shape[1:]) == p.output_shapes["mask"]


def test_saved_model_loads_in_safe_mode(tmp_path):
    model = emit_model(plan("input.shape=[64,64,3]", "encoder.name=mobilenetv3small"))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True)
    x = np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_weights_from_a_local_file(tmp_path, monkeypatch):
    source = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(64, 64, 3))
    rng = np.random.default_rng(1)
    source.set_weights([rng.normal(size=w.shape).astype("float32") for w in source.get_weights()])
    source.save_weights(tmp_path / "mnv3.weights.h5")
    monkeypatch.chdir(tmp_path)  # a relative path starts at the working directory
    model = emit_model(plan("input.shape=[64,64,3]", "encoder.name=mobilenetv3small",
                            "encoder.weights=mnv3.weights.h5"))
    # In layer order: Keras numbers some MobileNetV3 layers itself (re_lu_42), so names differ per build.
    mine, theirs = model.get_layer("backbone").get_weights(), source.get_weights()
    assert len(mine) == len(theirs)
    for a, b in zip(mine, theirs):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(EmitError) as info:
        emit_model(plan("input.shape=[64,64,3]", "encoder.name=mobilenetv3small", "encoder.weights=missing.h5"))
    assert info.value.path == "encoder.weights" and "no such weights file" in info.value.message


def test_trainable_counts_stages_from_the_end():
    """trainable 2 on ResNet50: the stride-16 and stride-32 stages (conv4_*, conv5_*) learn."""
    model = emit_model(plan("input.shape=[32,32,3]", "encoder.trainable=2"))
    body = model.get_layer("backbone")
    assert not body.get_layer("conv3_block4_out").trainable and not body.get_layer("conv1_conv").trainable
    assert body.get_layer("conv4_block1_1_conv").trainable and body.get_layer("conv5_block3_3_bn").trainable
    frozen = emit_model(plan("input.shape=[32,32,3]", "encoder.trainable=false"))
    decoder = sum(layer.count_params() for layer in frozen.layers if layer.name != "backbone")
    assert keras_counts(frozen)[0] == decoder - sum(2 * layer.output.shape[-1] for layer in frozen.layers
                                                    if isinstance(layer, keras.layers.BatchNormalization))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "resnet50v2", "densenet121", "mobilenetv2", "mobilenetv3large",
                                  "efficientnetb0", "efficientnetv2s", "convnexttiny"])
def test_every_family_builds_its_plan(name):
    p = plan("input.shape=[64,64,3]", f"encoder.name={name}")
    assert_backbone_model_matches_plan(emit_model(p), p)
    keras.backend.clear_session()
