"""Variant options planned without Keras: alignment, skips, blocks, merges, heads, 1D/3D, dynamic sizes."""

from __future__ import annotations

import pytest

from archgen.errors import PlanError
from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF

UNET = CONF / "unet.yaml"
SMALL = ["encoder.filters=4", "input.shape=[188,188,1]"]


def plan_of(*overrides, config=UNET):
    return make_plan(load_spec(config, [*SMALL, *overrides]))


def kinds(plan, group):
    return [layer.kind for layer in plan.layers if layer.group == group]


def test_pad_alignment_pads_the_upsampled_feature_to_the_skip():
    plan = plan_of("decoder.align=pad")
    # 188: skips 184, 88, 40, 16; the decoder grows to each: up 8 -> 16, 24 -> 40, 72 -> 88, 168 -> 184.
    assert [plan.layer(f"dec{i}_pad").attrs["padding"][0] for i in (4, 3, 2, 1)] == [(4, 4), (8, 8), (8, 8), (8, 8)]
    pad = plan.layer("dec1_pad")
    assert pad.shape[:2] == plan.layer("enc1_conv2").shape[:2] == (184, 184)
    assert plan.output_shapes["logits"][:2] == (180, 180)


def test_resize_alignment_resizes_the_skip():
    plan = plan_of("decoder.align=resize")
    assert plan.layer("dec1_resize").attrs["size"] == (8, 8)
    assert plan.layer("dec1_resize").shape == (8, 8, 4)


def test_no_alignment_needs_matching_sizes():
    with pytest.raises(PlanError, match=r"dec4_concat gets .*inputs differ in size.*no input size works"):
        plan_of("decoder.align=none")
    assert plan_of("decoder.align=none", "padding=same", "input.shape=[64,64,1]").layer("dec1_concat")


def test_per_level_alignment():
    plan = plan_of("decoder.align=[pad,crop,crop,resize]")
    assert [k for k in ("dec1_pad", "dec2_crop", "dec3_crop", "dec4_resize") if plan.layer(k)]


def test_skips_from_chosen_levels_only():
    plan = plan_of("decoder.skips=[1,3]")
    assert "concat" in kinds(plan, "dec1") and "concat" in kinds(plan, "dec3")
    assert "concat" not in kinds(plan, "dec2") and "concat" not in kinds(plan, "dec4")
    with pytest.raises(PlanError, match=r"decoder.skips\[0\]=7: no encoder level 7"):
        plan_of("decoder.skips=[7]")


def test_residual_block_projects_and_crops_the_shortcut():
    plan = plan_of("encoder.block.type=residual", "encoder.block.norm=batch")
    assert plan.layer("enc1_proj").params == 1 * 4  # 1x1 conv, no bias beside batch norm
    assert plan.layer("enc1_shortcut_crop").attrs["cropping"] == ((2, 2), (2, 2))
    assert plan.layer("enc1_residual").kind == "add"
    same = plan_of("encoder.block.type=residual", "padding=same", "input.shape=[64,64,1]")
    assert "crop" not in kinds(same, "enc1")


def test_group_norm_must_divide_channels():
    with pytest.raises(PlanError, match=r"encoder.block.groups=3: .*enc1_norm1 has 4 channels"):
        plan_of("encoder.block.norm=group", "encoder.block.groups=3")


@pytest.mark.parametrize("down, layer, params", [("maxpool", "enc1_pool", 0), ("avgpool", "enc1_pool", 0),
                                                 ("conv", "enc1_down", 2 * 2 * 4 * 4 + 4)])
def test_downsampling_kinds(down, layer, params):
    plan = plan_of(f"encoder.downsample.type={down}")
    assert plan.layer(layer).params == params
    assert plan.layer(layer).shape == (92, 92, 4)


def test_resize_upsampling_is_followed_by_a_conv():
    plan = plan_of("decoder.upsample={type: resize, interpolation: bilinear, kernel_size: 3}")
    assert plan.layer("dec1_up").kind == "upsample" and plan.layer("dec1_upconv").params == 9 * 8 * 4 + 4


def test_add_merge_projects_the_skip_when_channels_differ():
    plan = plan_of("decoder.merge.type=add", "decoder.upsample.keep_channels=true")
    assert plan.layer("dec1_skip_proj").shape[-1] == plan.layer("dec1_up").shape[-1] == 8
    assert plan.layer("dec1_add").shape[-1] == 8


def test_attention_gate_structure():
    plan = plan_of("decoder.merge.type=attention")
    gate = [layer.name for layer in plan.layers if layer.name.startswith("dec1_attn")]
    assert gate == ["dec1_attn_x", "dec1_attn_g", "dec1_attn_add", "dec1_attn_relu", "dec1_attn_psi",
                    "dec1_attn_gate"]
    assert plan.layer("dec1_attn_psi").shape[-1] == 1
    assert plan.layer("dec1_attn_x").shape[-1] == 2  # half the skip's 4 channels


def test_channel_schedule_multiplier_and_cap():
    plan = plan_of("encoder.multiplier=3", "encoder.max_filters=50")
    assert [plan.layer(f"enc{i}_conv1").shape[-1] for i in (1, 2, 3, 4)] == [4, 12, 36, 50]


def test_kernel_size_per_level_and_dilation():
    plan = plan_of("encoder.block.kernel_size=[3,3,3,3,1]", "padding=same", "input.shape=[64,64,1]",
                   "encoder.block.dilation=2")
    assert plan.layer("bottleneck_conv1").attrs["kernel"] == 1
    assert plan.layer("enc1_conv1").attrs["dilation"] == 2


def test_deep_supervision_heads_are_named_after_their_level():
    plan = make_plan(load_spec(CONF / "deep_supervision.yaml"))
    assert plan.outputs == {"logits": "logits", "logits_dec2": "logits_dec2", "logits_dec3": "logits_dec3"}
    assert plan.output_shapes["logits_dec3"] == (64, 64, 4)
    assert plan.sizes.describe_output("logits_dec2") == "n / 2"


def test_softmax_on_one_channel_is_refused():
    with pytest.raises(PlanError, match=r"heads\[0\].activation=softmax"):
        plan_of("heads.0.activation=softmax", "heads.0.filters=1")


def test_1d_and_3d_from_the_same_keys():
    one = make_plan(load_spec(CONF / "unet1d.yaml"))
    assert one.ndim == 1 and one.output_shapes["stages"] == (3072, 5)
    three = make_plan(load_spec(CONF / "unet3d.yaml"))
    assert three.ndim == 3 and three.layer("dec1_crop").attrs["cropping"] == ((40, 40),) * 3


def test_dynamic_input_states_the_rule():
    plan = plan_of("input.shape=[null,null,1]")
    assert plan.output_shapes["logits"] == (None, None, 2)
    assert plan.layer("dec1_crop").attrs["cropping"] == ((88, 88), (88, 88))
    assert plan.sizes.describe("H") == "H = 16k + 60, k >= 8"
    assert plan.total_flops is None


def test_dynamic_input_refuses_a_size_dependent_resize():
    with pytest.raises(PlanError, match=r"input.shape\[0\]=null: dec4_resize"):
        plan_of("input.shape=[null,188,1]", "decoder.align=resize")


def test_filters_list_length_is_checked():
    with pytest.raises(PlanError, match=r"encoder.filters=\[1, 2\]: has 2 entries; encoder.depth=4 needs 5"):
        plan_of("encoder.filters=[1,2]")
