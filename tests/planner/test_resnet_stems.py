"""ResNet-style encoders written as stage tables: a stem that strides (an input batch norm, a 7x7/2
conv, a 3x3/2 max pool) and so makes levels of its own, pre-activation residual and bottleneck
blocks whose stages hand on their output normalised and activated, a shortcut that projects in
every stage's first block, and a backbone's centre convs; planned without Keras, then built."""

from __future__ import annotations

import numpy as np
import pytest

import archgen
from archgen.errors import PlanError
from archgen.report.diagram_levels import level_output

RESNET = """
input: {shape: [64, 96, 3]}
encoder:
  stem:
    input_norm: {scale: false, epsilon: 2.0e-5}
    filters: 8
    kernel_size: 7
    stride: 2
    pool: {kernel_size: 3, factor: 2}
  block: {type: residual, order: pre_activation, norm: batch, bias: false, shortcut_norm: false,
          project: first_block, stage_output: activated}
  downsample: {type: stride}
  stages: [{filters: 8, blocks: 2}, {filters: 16, blocks: 2, stride: 2}, {filters: 32, stride: 2}]
decoder:
  skips: [2, 3, 4]
  upsample: {type: interpolate}
  block: {type: conv, norm: batch, bias: false}
  stages: [{filters: 4}, {filters: 4}, {filters: 8}, {filters: 16}]
heads: [{name: mask, filters: 1, kernel_size: 3, activation: sigmoid}]
"""


def names(plan) -> list[str]:
    return [layer.name for layer in plan.layers]


def test_a_striding_stem_is_two_levels_of_its_own():
    plan = archgen.plan(RESNET)
    groups = {layer.name: layer.group for layer in plan.layers}
    assert groups["stem_input_norm"] == "enc1"  # level 1: the input, normalised
    assert {groups[n] for n in ("stem_conv1_pad", "stem_conv1", "stem_norm1", "stem_act1", "enc2_pool")} == {"enc2"}
    assert plan.layer("stem_conv1").shape == (32, 48, 8) and plan.layer("stem_conv1").attrs["kernel"] == 7
    # the pool is the down-sampling after level 2, named as one
    assert plan.layer("enc2_pool_pad").shape == (34, 50, 8) and plan.layer("enc2_pool").shape == (16, 24, 8)
    assert plan.layer("enc3_block1_norm1").inputs == ("enc2_pool",)  # the first stage is level 3
    assert plan.depth == 4 and plan.output_shapes == {"mask": (64, 96, 1)}
    # the decoder joins the stem's activated output at level 2; level 1 has no skip
    assert plan.layer("dec2_concat").inputs == ("dec2_up", "stem_act1")
    assert "dec1_concat" not in names(plan) and plan.layer("dec1_conv1").inputs == ("dec1_up",)
    assert plan.sizes.period == 16 and plan.sizes.offset == 0  # 2 (stem) x 2 (pool) x 2 x 2 (stages)
    # the diagram's level 2 is the stem's output, not the pool's
    assert level_output(plan, "enc2").name == "stem_act1" and level_output(plan, "enc1").name == "stem_input_norm"


def test_the_input_norm_learns_a_shift_and_keeps_statistics():
    assert archgen.plan(RESNET).layer("stem_input_norm").params == 3 + 2 * 3  # no scale
    both = archgen.plan(RESNET.replace("scale: false, ", ""))
    assert both.layer("stem_input_norm").params == 2 * 3 + 2 * 3


def test_pre_activation_blocks_and_what_their_stages_hand_on():
    plan = archgen.plan(RESNET)
    n = names(plan)
    # within a stage: norm, act, conv, norm, act, conv, then the addition and nothing after it
    block2 = [x for x in n if x.startswith("enc3_block2_")]
    assert block2 == ["enc3_block2_norm1", "enc3_block2_act1", "enc3_block2_conv1", "enc3_block2_norm2",
                      "enc3_block2_act2", "enc3_block2_conv2", "enc3_block2_residual"]
    assert plan.layer("enc3_block2_residual").inputs == ("enc3_block2_conv2", "enc3_block1_residual")  # identity
    # the stage hands on its sum normalised and activated: the skip, and the next stage's input
    assert plan.layer("enc3_out_act").inputs == ("enc3_out_norm",)
    assert plan.layer("dec3_concat").inputs == ("dec3_up", "enc3_out_act")
    assert "enc4_block1_norm1" not in n  # the next stage's first block does not normalise it again
    assert plan.layer("enc4_block1_conv1_pad").inputs == ("enc3_out_act",)
    assert plan.layer("enc4_block1_proj").inputs == ("enc3_out_act",) and "enc4_block1_proj_norm" not in n
    # the first stage's first block pre-activates the pooled stem and projects from that
    assert plan.layer("enc3_block1_proj").inputs == ("enc3_block1_act1",)
    assert plan.layer("bottleneck_out_act").inputs == ("bottleneck_out_norm",)


def test_project_first_block_projects_where_nothing_changes():
    with_projection = archgen.plan(RESNET)
    assert with_projection.layer("enc3_block1_proj").params == 8 * 8  # 8 channels to 8, 1x1, no bias
    assert "enc3_block2_proj" not in names(with_projection)
    without = archgen.plan(RESNET.replace("project: first_block, ", ""))
    assert "enc3_block1_proj" not in names(without)
    assert without.layer("enc3_block1_residual").inputs == ("enc3_block1_conv2", "enc2_pool")
    assert with_projection.total_params - without.total_params == 8 * 8


def test_bottleneck_blocks():
    plan = archgen.plan(RESNET.replace("type: residual", "type: bottleneck").replace(
        "stages: [{filters: 8, blocks: 2}, {filters: 16, blocks: 2, stride: 2}, {filters: 32, stride: 2}]",
        "stages: [{filters: 32, convs: 3, blocks: 2}, {filters: 64, convs: 3, stride: 2}, "
        "{filters: 128, convs: 3, stride: 2}]"))
    convs = [(layer.name, layer.attrs["filters"], layer.attrs["kernel"], layer.attrs["stride"])
             for layer in plan.layers if layer.kind == "conv" and layer.name.startswith("enc4_")]
    assert convs == [("enc4_conv1", 16, 1, 1), ("enc4_conv2", 16, 3, 2), ("enc4_conv3", 64, 1, 1),
                     ("enc4_proj", 64, 1, 2)]
    assert plan.layer("enc4_conv2").shape == (8, 12, 16)
    # the size entering the bottleneck is its strided conv's (legal sizes: every multiple of 16, from 16)
    assert plan.sizes.period == 16 and plan.sizes.k_min == 1 and plan.sizes.offset == 0


def test_a_bottleneck_block_needs_three_convs():
    with pytest.raises(PlanError) as info:
        archgen.plan(RESNET.replace("type: residual", "type: bottleneck"))
    assert info.value.path == "encoder.block.type" and "convs: 3" in str(info.value)


@pytest.mark.parametrize("change, path, words", [
    (("stride: 2\n    pool", "stride: 1\n    pool"), "encoder.stem.pool", "stride above 1"),
    (("    pool: {kernel_size: 3, factor: 2}\n", ""), "encoder.stages[0].stride", "smaller than the stem's output"),
    (("skips: [2, 3, 4]", "type: unet++\n  skips: [2, 3, 4]"), "encoder.stem.stride", "use decoder.type unet"),
    (("order: pre_activation, ", ""), "encoder.block.stage_output", "order: pre_activation"),
    (("stages: [{filters: 4}, ", "stages: ["), "decoder.stages", "the input, the stem, 3 stages"),
])
def test_refused_with_the_key_to_change(change, path, words):
    with pytest.raises(PlanError) as info:
        archgen.plan(RESNET.replace(*change))
    assert info.value.path == path and words in str(info.value)


def test_a_stem_of_stride_1_stays_in_level_1():
    plan = archgen.plan(RESNET.replace("stride: 2\n    pool: {kernel_size: 3, factor: 2}\n", "stride: 1\n").replace(
        "skips: [2, 3, 4]", "skips: [1, 2]").replace("[{filters: 4}, {filters: 4}, {filters: 8}, {filters: 16}]",
                                                     "[{filters: 4}, {filters: 8}]"))
    assert {plan.layer(n).group for n in ("stem_input_norm", "stem_conv1", "stem_act1")} == {"enc1"}
    assert plan.layer("enc1_block1_norm1").inputs == ("stem_act1",) and plan.depth == 2


CENTER = """
input: {shape: [64, 64, 3]}
encoder: {type: backbone, name: vgg16, center: {filters: 32, convs: 2}}
decoder:
  skips: [2, 3, 4, 5]
  upsample: {type: interpolate}
  block: {norm: batch, bias: false}
  stages: [{filters: 4}, {filters: 4}, {filters: 4}, {filters: 4}, {filters: 8}]
heads: [{name: mask, filters: 1}]
"""


def test_a_backbones_centre_convs():
    plan = archgen.plan(CENTER)
    assert [n for n in names(plan) if n.startswith("bottleneck_")] == [
        "bottleneck_conv1", "bottleneck_norm1", "bottleneck_act1", "bottleneck_conv2", "bottleneck_norm2",
        "bottleneck_act2"]
    assert plan.layer("bottleneck_conv1").inputs == ("backbone_s32",)
    assert plan.layer("bottleneck_conv1").params == 9 * 512 * 32 and plan.layer("bottleneck_conv2").params == 9 * 32 * 32
    assert plan.layer("dec5_up").inputs == ("bottleneck_act2",)
    assert "backbone_s1" not in names(plan)  # level 1 has no skip, so its tap is pruned


@pytest.mark.parametrize("config, overrides", [
    (RESNET, []),
    (RESNET.replace("type: residual", "type: bottleneck").replace("{filters: 8, blocks: 2}", "{filters: 16, convs: 3}")
     .replace("{filters: 16, blocks: 2, stride: 2}", "{filters: 32, convs: 4, stride: 2}")
     .replace("{filters: 32, stride: 2}", "{filters: 64, convs: 3, stride: 2}"), []),
    (RESNET, ["input.shape=[32,64,2]"]),
    (CENTER, []),
])
def test_keras_builds_the_plan(config, overrides):
    pytest.importorskip("keras")
    from archgen.emit import emit_model
    from tests.emit.test_emit_plan_agree import assert_model_matches_plan

    plan = archgen.plan(config, overrides)
    model = emit_model(plan)
    if "backbone" in names(plan):  # a nested model: its count, then the layers around it
        assert model.count_params() == plan.total_params
        for layer in plan.layers:
            if layer.kind not in ("backbone", "tap", "input"):
                assert tuple(model.get_layer(layer.name).output.shape[1:]) == layer.shape, layer.name
    else:
        assert_model_matches_plan(model, plan)
    norm = model.get_layer("stem_input_norm") if "stem_input_norm" in names(plan) else None
    if norm is not None:  # a shift and the moving statistics: no scale
        assert not norm.scale and norm.center and len(norm.trainable_weights) == 1
    y = model.predict(np.zeros((1, *plan.input_shape), "float32"), verbose=0)
    assert y.shape[1:] == plan.output_shapes["mask"]
