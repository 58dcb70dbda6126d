"""The emitter builds exactly what the planner planned: names, shapes, params."""

from __future__ import annotations

import numpy as np
import pytest

from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF

keras = pytest.importorskip("keras")
from archgen.emit import EMITTERS, emit_model  # noqa: E402


def assert_model_matches_plan(model, plan):
    layers = {layer.name: layer for layer in model.layers}
    # Keras lists layers in its own topological order; names must match one to one.
    assert sorted(layers) == sorted(layer.name for layer in plan.layers)
    for lp in plan.layers:
        layer = layers[lp.name]
        assert tuple(layer.output.shape[1:]) == lp.shape, lp.name
        assert layer.count_params() == lp.params, lp.name
    assert model.count_params() == plan.total_params


@pytest.mark.parametrize("config, overrides", [
    ("unet.yaml", ["input.shape=[188,188,1]"]),
    ("unet.yaml", ["input.shape=[204,252,1]", "encoder.filters=8"]),
    ("unet_same.yaml", ["input.shape=[64,96,1]", "encoder.filters=4"]),
    ("encoder_decoder.yaml", ["input.shape=[32,32,3]", "encoder.filters=4"]),
])
def test_conf_models_match_their_plans(config, overrides):
    plan = make_plan(load_spec(CONF / config, overrides))
    model = emit_model(plan)
    assert_model_matches_plan(model, plan)
    x = np.zeros((1, *plan.input_shape), "float32")
    y = model(x)
    assert tuple(y.shape[1:]) == next(iter(plan.output_shapes.values()))


def test_seed_transposed_conv_example():
    """The seed's worked example: [[1,2],[3,4]], kernel 1x1, stride 2, weight 1, bias 1."""
    from archgen.kinds import attrs_of
    from archgen.planner.ir import LayerPlan

    layer = LayerPlan(name="dec1_up", kind="conv_transpose", inputs=("input",), shape=(4, 4, 1), params=2,
                      flops=0, group="dec1",
                      attrs=attrs_of("conv_transpose", dict(filters=1, kernel=1, stride=2, dilation=1, padding="same",
                                                            activation="linear", use_bias=True)))
    x = keras.Input((2, 2, 1))
    y = EMITTERS["conv_transpose"](layer, [x], 2)
    model = keras.Model(x, y)
    model.set_weights([np.ones((1, 1, 1, 1)), np.ones((1,))])
    out = model.predict(np.array([[1, 2], [3, 4]], "float32").reshape(1, 2, 2, 1), verbose=0).reshape(4, 4)
    np.testing.assert_array_equal(out, [[2, 1, 3, 1], [1, 1, 1, 1], [4, 1, 5, 1], [1, 1, 1, 1]])


def test_unknown_kind_is_an_emit_error():
    from archgen.errors import EmitError
    from archgen.kinds import attrs_of
    from archgen.planner.ir import LayerPlan

    plan = make_plan(load_spec(CONF / "unet_same.yaml", ["input.shape=[32,32,1]", "encoder.filters=2"]))
    bad = plan.layers[0], LayerPlan("x", "convv", ("input",), (32, 32, 1), 0, 0, "enc1", attrs_of("input", {}))
    with pytest.raises(EmitError, match="did you mean 'conv'"):
        emit_model(type(plan)(plan.name, plan.ndim, plan.input_shape, bad, plan.outputs, None, plan.depth))
