"""The planner's FLOPs and receptive field against TensorFlow's own view of the built model."""

from __future__ import annotations

import re

import numpy as np
import pytest

from archgen.planner import make_plan
from archgen.planner.cost import plan_cost
from archgen.config import load_spec
from tests.conftest import CONF

tf = pytest.importorskip("tensorflow")
from archgen.emit import emit_model  # noqa: E402


def tensorflow_flops(model, input_shape):
    """TF's profiler on the frozen graph (the graph is not run): the total, and per op scope.

    It counts 2 x multiply-adds of convs plus bias adds and a norm's elementwise ops.
    """
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([1, *input_shape], tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="scope",
                                         options=opts)
    per_op, stack = {}, list(info.children)
    while stack:
        node = stack.pop()
        per_op[node.name] = node.float_ops
        stack.extend(node.children)
    return info.total_float_ops, per_op


@pytest.mark.slow
@pytest.mark.parametrize("config, overrides", [
    ("unet.yaml", ["input.shape=[188,188,1]"]),
        ("attention_unet.yaml", ["input.shape=[64,64,3]"]),
    ("deep_supervision.yaml", ["input.shape=[64,64,1]"]),
    ("unet3d.yaml", ["input.shape=[92,92,92,3]"]),
    ("unet1d.yaml", ["input.shape=[512,2]"]),
])
def test_flops_within_one_percent_of_tensorflow_profiler(config, overrides):
    plan = make_plan(load_spec(CONF / config, overrides))
    theirs, per_op = tensorflow_flops(emit_model(plan), plan.input_shape)
    # Every conv exactly: the profiler's "<model>/<layer>_1/convolution" scope.
    for layer in plan.layers:
        if layer.kind == "conv":
            scope = re.compile(rf"/{layer.name}(_\d+)?/convolution$")
            counted = [v for k, v in per_op.items() if scope.search(k)]
            assert counted == [layer.flops], layer.name
    # The total: ours is 2 x multiply-adds only; the profiler adds bias adds and norms' elementwise
    # ops, and leaves out 3D transposed convs (Conv3DBackpropInputV2 has no registered count).
    assert abs(theirs - plan.total_flops) / theirs < 0.01, (plan.total_flops, theirs)


@pytest.mark.parametrize("overrides", [
    ["input.shape=[256,1]", "padding=same"],
    ["input.shape=[252,1]", "padding=valid"],
    ["input.shape=[572,1]", "padding=valid", "encoder.depth=4"],  # the seed U-Net's axis: 204
    ["input.shape=[256,1]", "padding=same", "decoder.upsample.kernel_size=3",
     "encoder.downsample={type: conv, activation: linear}"],
    ["input.shape=[256,1]", "padding=same", "decoder.upsample={type: resize, kernel_size: 2}"],
    ["input.shape=[256,1]", "padding=same", "decoder.upsample={type: resize, kernel_size: 1, interpolation: linear}"],
    ["input.shape=[256,1]", "padding=same",
     "decoder.upsample={type: resize, kernel_size: 3, interpolation: linear, conv_first: true}"],
])
def test_receptive_field_equals_gradient_extent(overrides):
    """With average pooling, linear activations and all-ones weights no path cancels, so the input
    positions with a non-zero gradient for an output are exactly the ones it reads. The widest
    such span over one output per pooling-grid residue is the receptive field."""
    base = ["encoder.depth=3", "encoder.filters=1", "encoder.downsample.type=avgpool",
            "encoder.block.activation=linear",
            "decoder.upsample.activation=linear"]
    plan = make_plan(load_spec(CONF / "unet.yaml", base + overrides))
    model = emit_model(plan)
    model.set_weights([np.ones_like(w) for w in model.get_weights()])
    x = tf.ones((1, *plan.input_shape))
    centre = plan.output_shapes["logits"][0] // 2
    widest = 0
    for c in range(centre, centre + plan.sizes.period):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = model(x)[0, c, 0]
        nonzero = np.flatnonzero(tape.gradient(y, x).numpy()[0, :, 0])
        widest = max(widest, nonzero[-1] - nonzero[0] + 1)
    assert plan_cost(plan).receptive_field == widest


ANISOTROPIC = """\
name: anisotropic
input: {shape: [60, 37, 1]}
padding: valid
encoder:
  block: {type: conv, activation: linear}
  downsample: {type: avgpool}
  stages:
    - {filters: 1, kernel_size: [3, 1], stride: 1}
    - {filters: 1, kernel_size: 3, stride: [2, 1]}
    - {filters: 1, kernel_size: 3, stride: [2, 3]}
decoder:
  align: crop
  upsample: {type: transpose, activation: linear}
  stages:
    - {filters: 1, kernel_size: [3, 1]}
    - {filters: 1, kernel_size: 3}
heads:
  - {name: logits, filters: 1}
"""


def test_receptive_fields_per_axis_equal_gradient_extent(tmp_path):
    """An anisotropic network reads a different span on each axis: the planner's per-axis fields
    equal the non-zero gradient's extent along each axis (as above, one output per grid residue)."""
    config = tmp_path / "anisotropic.yaml"
    config.write_text(ANISOTROPIC)
    plan = make_plan(load_spec(config))
    model = emit_model(plan)
    model.set_weights([np.ones_like(w) for w in model.get_weights()])
    x = tf.ones((1, *plan.input_shape))
    out = plan.output_shapes["logits"]
    periods = [rule.period for rule in plan.axis_sizes]
    widest = [0, 0]
    for c0 in range(out[0] // 2, out[0] // 2 + periods[0]):
        for c1 in range(out[1] // 2, out[1] // 2 + periods[1]):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = model(x)[0, c0, c1, 0]
            grad = tape.gradient(y, x).numpy()[0, :, :, 0] != 0
            for axis in (0, 1):
                nonzero = np.flatnonzero(grad.any(axis=1 - axis))
                widest[axis] = max(widest[axis], nonzero[-1] - nonzero[0] + 1)
    cost = plan_cost(plan)
    assert widest[0] != widest[1]
    assert cost.receptive_fields == tuple(widest)
    assert cost.receptive_field == max(widest)
