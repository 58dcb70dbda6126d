"""A backbone's FLOPs (the table's) and the decoder's against TensorFlow's profiler of the built model."""

from __future__ import annotations

import pytest

from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
from archgen.emit import emit_model  # noqa: E402
from tests.emit.test_cost_vs_tensorflow import tensorflow_flops  # noqa: E402

MULTIPLY_ADDS = ("convolution", "depthwise", "MatMul")  # convs, depthwise convs, ConvNeXt's pointwise Dense


def grouped_conv_flops(model) -> int:
    """FLOPs of grouped convs (ConvNeXt's 7x7 depthwise convs are Conv2D with groups = channels),
    which the profiler leaves out: it has no count registered for them."""
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += grouped_conv_flops(layer)
        elif isinstance(layer, keras.layers.Conv2D) and layer.groups > 1:
            out = layer.output.shape
            total += 2 * out[1] * out[2] * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1] \
                * layer.filters // layer.groups
    return total


@pytest.mark.slow
@pytest.mark.parametrize("name, within", [("resnet50", 0.01), ("mobilenetv3small", 0.01), ("convnexttiny", 0.02)])
def test_flops_equal_the_profilers_multiply_adds(name, within):
    plan = make_plan(load_spec(CONF / "peers" / "smp_unet_resnet50.yaml", ["input.shape=[64,96,3]",
                                                                            f"encoder.name={name}"]))
    model = emit_model(plan)
    total, per_op = tensorflow_flops(model, plan.input_shape)
    multiply_adds = sum(v for k, v in per_op.items() if k.rsplit("/", 1)[-1] in MULTIPLY_ADDS)
    assert multiply_adds + grouped_conv_flops(model.get_layer("backbone")) == plan.total_flops
    # The profiler's total adds bias adds and the norms' and activations' elementwise ops (ConvNeXt's
    # layer norms and GELUs: 1.7%), and leaves out grouped convs.
    assert abs(total - plan.total_flops) / total < within, (plan.total_flops, total)
