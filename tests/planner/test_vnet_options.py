"""Options V-Net-like networks need, planned without Keras or a peer: a residual shortcut that
repeats the input's channels, reads the first conv or the up-sampled feature; the sum activated
again; a stage's own add_at; a norm after the strided down conv; a head's conv before its own;
per-level output_padding; UNet 3+'s fusion norm. And their errors."""

from __future__ import annotations

import pytest

import archgen
from archgen.errors import PlanError, SpecError

VNET = """
input: {shape: [32, 32, 2]}
encoder:
  block: {type: residual, norm: batch, activation: elu, shortcut: repeat, add_at: between_activations}
  downsample: {type: conv, change_channels: true, bias: false, norm: batch, activation: elu}
  stages: [{filters: 8, convs: 1, kernel_size: 5, add_at: before_activation},
           {filters: 16, convs: 2, kernel_size: 5, stride: 2}]
decoder:
  align: none
  upsample: {type: transpose, norm: batch, activation: elu}
  stages: [{filters: 16, up_filters: 8, convs: 1, kernel_size: 5}]
heads: [{name: logits, filters: 3, pre_conv_kernel_size: 5}]
"""


def names(plan, prefix: str) -> list[str]:
    return [layer.name for layer in plan.layers if layer.name.startswith(prefix)]


def test_the_input_repeated_is_the_first_levels_shortcut():
    plan = archgen.plan(VNET)
    assert plan.layer("enc1_shortcut_repeat").inputs == ("input",) * 4  # 2 channels repeated to 8
    assert plan.layer("enc1_shortcut_repeat").params == 0
    assert plan.layer("enc1_residual").inputs == ("enc1_norm1", "enc1_shortcut_repeat")  # before the activation


def test_between_activations_activates_the_convs_and_the_sum():
    plan = archgen.plan(VNET)
    assert names(plan, "bottleneck_") == ["bottleneck_conv1", "bottleneck_norm1", "bottleneck_act1",
                                          "bottleneck_conv2", "bottleneck_norm2", "bottleneck_act2",
                                          "bottleneck_residual", "bottleneck_act"]
    assert plan.layer("bottleneck_residual").inputs == ("bottleneck_act2", "enc1_down_act")


def test_the_strided_conv_has_its_norm_and_activation():
    plan = archgen.plan(VNET)
    assert names(plan, "enc1_down") == ["enc1_down", "enc1_down_norm", "enc1_down_act"]
    assert plan.layer("enc1_down").params == 2 * 2 * 8 * 16  # kernel 2, no bias
    assert plan.layer("enc1_down_norm").params == 4 * 16  # batch norm: scale, shift, mean, variance


def test_the_heads_conv_before_its_own():
    plan = archgen.plan(VNET)
    assert names(plan, "logits") == ["logits_pre_conv", "logits_pre_norm", "logits_pre_act", "logits"]
    assert plan.layer("logits_pre_conv").params == 5 * 5 * 16 * 3  # to the head's filters, no bias with a norm
    assert plan.layer("logits").params == 3 * 3 + 3


def test_a_repeat_that_strides_or_does_not_divide_is_refused():
    with pytest.raises(PlanError) as info:
        archgen.plan(VNET.replace("[32, 32, 2]", "[32, 32, 3]"))
    assert info.value.path == "encoder.block.shortcut" and "8 channels from 3" in str(info.value)
    strided = VNET.replace("type: conv, change_channels: true, bias: false, norm: batch, activation: elu",
                           "type: stride").replace("add_at: before_activation}", "add_at: before_activation, stride: 1}")
    with pytest.raises(PlanError) as info:
        archgen.plan(strided.replace("filters: 16, convs: 2, kernel_size: 5, stride: 2",
                                     "filters: 32, convs: 2, kernel_size: 5, stride: 2"))
    assert info.value.path == "encoder.block.shortcut" and "strides" in str(info.value)


KUC = """
input: {shape: [32, 32, 1]}
encoder:
  block: {type: residual, activation: relu, shortcut_from: first_conv, add_at: between_activations}
  downsample: {type: stride}
  stages: [{filters: 4, convs: 2}, {filters: 8, convs: 3, stride: 2}]
decoder:
  align: none
  block: {type: residual, activation: relu, shortcut_from: upsampled, add_at: between_activations}
  stages: [{filters: 4, up_filters: 4, convs: 2}]
heads: [{name: out, filters: 1}]
"""


def test_the_first_conv_strides_once_and_is_the_shortcut():
    plan = archgen.plan(KUC)
    assert plan.layer("bottleneck_conv1").attrs["stride"] in (2, (2, 2))
    assert plan.layer("bottleneck_residual").inputs == ("bottleneck_conv3", "bottleneck_conv1")
    assert not names(plan, "bottleneck_proj")  # it has the filters and the size already


def test_the_up_sampled_feature_is_the_decoders_shortcut():
    plan = archgen.plan(KUC)
    assert plan.layer("dec1_residual").inputs == ("dec1_conv2", "dec1_up")


def test_an_up_sampled_shortcut_outside_a_unet_decoder_is_refused():
    with pytest.raises(PlanError) as info:
        archgen.plan(KUC.replace("align: none", "align: none\n  type: unet++"))
    assert info.value.path == "decoder.block.shortcut_from" and "no up-sampled feature" in str(info.value)


def test_a_stage_add_at_on_a_plain_block_is_refused():
    with pytest.raises(PlanError) as info:
        archgen.plan(VNET.replace("type: residual, norm: batch, activation: elu, shortcut: repeat, "
                                  "add_at: between_activations", "type: conv, norm: batch, activation: elu"))
    assert info.value.path == "encoder.stages[0].add_at"


ONE_LEVEL_KEEPS = """
input: {shape: [32, 32, 1]}
encoder:
  downsample: {type: stride}
  stages: [{filters: 4, stride: 2}, {filters: 8, stride: 1}, {filters: 8, stride: 2}]  # level 2 keeps the size
decoder:
  align: none
  upsample: {type: transpose, kernel_size: 3, padding: 1, output_padding: %s}
heads: [{name: out, filters: 1}]
"""


def test_output_padding_per_level():
    assert archgen.plan(ONE_LEVEL_KEEPS % "[0, 1]").output_shapes["out"] == (16, 16, 1)
    with pytest.raises(PlanError) as info:
        archgen.plan(ONE_LEVEL_KEEPS % "1")
    assert info.value.path == "decoder.upsample.output_padding" and "stride 1" in str(info.value)
    with pytest.raises(PlanError) as info:
        archgen.plan(ONE_LEVEL_KEEPS % "[0, 1, 0]")
    assert info.value.path == "decoder.upsample.output_padding" and "3 values for 2" in str(info.value)


def test_fusion_norm_outside_unet3plus_is_refused():
    with pytest.raises(SpecError) as info:
        archgen.plan(KUC.replace("align: none", "align: none\n  fusion_norm: batch"))
    assert info.value.path == "decoder.fusion_norm"
