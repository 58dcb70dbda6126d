"""The rsu block (U^2-Net's RSU and RSU-4F) and a head's fused output, planned: layers in order,
parameters counted by hand, dilations, per-level values, and the errors their keys give."""

from __future__ import annotations

import pytest

from archgen.config.model import ArchSpec
from archgen.errors import PlanError
from archgen.planner import make_plan


def config(block: dict | None = None, shape=(16, 16, 1), padding: str = "same", fuse: dict | None = None,
           **head) -> ArchSpec:
    block = block or {"type": "rsu", "height": [1, "dilated"], "mid_filters": [4, 4], "dilations": [1, 2, 3]}
    stride = [2] * (len(shape) - 1)
    return ArchSpec.model_validate({
        "input": {"shape": list(shape)}, "padding": padding,
        "encoder": {"block": block, "stages": [{"filters": 8}, {"filters": 8, "stride": stride}]},
        "decoder": {"upsample": {"type": "interpolate", "interpolation": "nearest"}, "stages": [{"filters": 8}]},
        "heads": [{"name": "logits", "filters": 2, **({"fuse": fuse} if fuse else {}), **head}]})


def layers_of(plan, group: str):
    return [layer for layer in plan.layers if layer.group == group]


def test_a_pooled_block_is_a_small_unet_with_its_input_conv_added():
    plan = make_plan(config())
    enc1 = layers_of(plan, "enc1")
    assert [layer.name for layer in enc1] == [
        "enc1_in_conv", "enc1_rsu_enc1_conv", "enc1_rsu_enc1_pool", "enc1_rsu_enc2_conv", "enc1_rsu_bottleneck_conv",
        "enc1_rsu_dec2_concat", "enc1_rsu_dec2_conv", "enc1_rsu_dec1_up", "enc1_rsu_dec1_concat",
        "enc1_rsu_dec1_conv", "enc1_residual", "enc1_pool"]
    by_name = {layer.name: layer for layer in enc1}
    # 3x3 convs with a bias: in 1 -> 8, 8 -> 4, 4 -> 4 twice, 8 (concat) -> 4, 8 (concat) -> 8
    assert [by_name[n].params for n in ("enc1_in_conv", "enc1_rsu_enc1_conv", "enc1_rsu_enc2_conv",
                                         "enc1_rsu_bottleneck_conv", "enc1_rsu_dec2_conv", "enc1_rsu_dec1_conv")] \
        == [80, 292, 148, 148, 292, 584]
    assert sum(layer.params for layer in enc1) == 1544
    assert by_name["enc1_rsu_bottleneck_conv"].attrs["dilation"] == 2  # the paper's bottom conv
    assert by_name["enc1_rsu_enc2_conv"].shape == (8, 8, 4) and by_name["enc1_rsu_dec1_conv"].shape == (16, 16, 8)
    assert by_name["enc1_rsu_dec2_concat"].inputs == ("enc1_rsu_bottleneck_conv", "enc1_rsu_enc2_conv")
    assert by_name["enc1_residual"].inputs == ("enc1_rsu_dec1_conv", "enc1_in_conv")


def test_a_dilated_block_pools_nothing_and_dilates_its_inner_convs():
    plan = make_plan(config())
    convs = {layer.name: layer for layer in layers_of(plan, "bottleneck") if layer.kind == "conv"}
    assert {name: layer.attrs["dilation"] for name, layer in convs.items()} == {
        "bottleneck_in_conv": 1, "bottleneck_rsu_enc1_conv": 1, "bottleneck_rsu_enc2_conv": 2,
        "bottleneck_rsu_bottleneck_conv": 3, "bottleneck_rsu_dec2_conv": 2, "bottleneck_rsu_dec1_conv": 1}
    assert not any(layer.kind in ("maxpool", "upsample") for layer in layers_of(plan, "bottleneck"))
    assert sum(layer.params for layer in layers_of(plan, "bottleneck")) == 584 + 292 + 148 + 148 + 292 + 584


def test_the_decoder_reuses_the_block_level_by_level():
    plan = make_plan(config())
    dec1 = {layer.name for layer in layers_of(plan, "dec1")}
    assert "dec1_rsu_enc1_pool" in dec1 and "dec1_rsu_dec1_up" in dec1  # level 1's height, 1


def test_mid_filters_default_to_a_quarter_of_the_level():
    plan = make_plan(config({"type": "rsu", "height": 1}))
    assert next(layer for layer in plan.layers if layer.name == "enc1_rsu_enc1_conv").shape[-1] == 2  # 8 / 4


def test_norm_after_each_conv_drops_the_bias():
    plan = make_plan(config({"type": "rsu", "height": 1, "norm": "batch"}))
    names = [layer.name for layer in layers_of(plan, "enc1")]
    assert names[:3] == ["enc1_in_conv", "enc1_in_norm", "enc1_in_act"]
    assert next(layer for layer in plan.layers if layer.name == "enc1_in_conv").params == 9 * 8


@pytest.mark.parametrize("shape, interpolation", [((24, 1), "linear"), ((8, 8, 8, 1), "nearest")])
def test_1d_and_3d(shape, interpolation):
    plan = make_plan(config({"type": "rsu", "height": 1, "interpolation": interpolation}, shape=shape))
    assert plan.output_shapes["logits"] == (*shape[:-1], 2)


def test_valid_padding_crops_what_each_join_and_the_addition_need():
    plan = make_plan(config({"type": "rsu", "height": 1}, shape=(90, 90, 1), padding="valid"))
    names = {layer.name: layer for layer in plan.layers}
    assert "enc1_rsu_dec1_crop" in names and "enc1_shortcut_crop" in names
    assert names["enc1_residual"].shape == names["enc1_shortcut_crop"].shape
    assert plan.sizes is not None


@pytest.mark.parametrize("block, path", [
    ({"type": "rsu", "height": [1, 1, 1]}, "encoder.block.height"),
    ({"type": "rsu", "mid_filters": [4]}, "encoder.block.mid_filters"),
    ({"type": "rsu", "order": "pre_activation", "norm": "batch"}, "encoder.block.order"),
])
def test_bad_block_values_name_their_key(block, path):
    with pytest.raises(PlanError) as info:
        make_plan(config(block))
    assert info.value.path == path


def test_bilinear_is_refused_in_3d():
    with pytest.raises(PlanError, match="2D inputs only") as info:
        make_plan(config({"type": "rsu", "height": 1}, shape=(8, 8, 8, 1)))
    assert info.value.path == "encoder.block.interpolation"


def test_a_fused_head_concatenates_its_sides_then_convs():
    plan = make_plan(config(fuse={"levels": [1, 2], "interpolation": "nearest"}, activation="sigmoid"))
    head = [layer for layer in plan.layers if layer.group == "head"]
    assert [layer.name for layer in head] == ["logits_dec1", "logits_dec2_conv", "logits_dec2_up", "logits_dec2",
                                              "logits_concat", "logits"]
    by_name = {layer.name: layer for layer in head}
    assert by_name["logits_dec1"].params == 9 * 8 * 2 + 2 and by_name["logits_dec2_up"].attrs["factor"] == 2
    assert by_name["logits"].params == 4 * 2 + 2  # 1x1 on the two sides' 2 + 2 channels
    assert list(plan.output_shapes) == ["logits"]
    sides = make_plan(config(fuse={"levels": [1, 2], "interpolation": "nearest", "outputs": True}))
    assert list(sides.output_shapes) == ["logits_dec1", "logits_dec2", "logits"]


@pytest.mark.parametrize("fuse, head, path", [
    ({"levels": [1, 3]}, {}, "heads[0].fuse.levels[1]"),
    ({"levels": [1, 1]}, {}, "heads[0].fuse.levels[1]"),
    ({"levels": [1, 2]}, {"deep_supervision": [2]}, "heads[0].deep_supervision"),
    ({"levels": [1], "interpolation": "bilinear"}, {"level": 2}, "heads[0].fuse.levels[0]"),
])
def test_bad_fused_heads_name_their_key(fuse, head, path):
    with pytest.raises(PlanError) as info:
        make_plan(config(fuse={"interpolation": "nearest", **fuse}, **head))
    assert info.value.path == path


def test_a_bilinear_fuse_is_refused_in_1d():
    with pytest.raises(PlanError) as info:
        make_plan(config({"type": "rsu", "height": 1, "interpolation": "linear"}, shape=(24, 1),
                         fuse={"levels": [1, 2]}))
    assert info.value.path == "heads[0].fuse.interpolation"


@pytest.mark.parametrize("height, padding", [([1, 3], "same"), (1, "valid")])
def test_the_legal_sizes_count_the_poolings_inside_the_blocks(height, padding):
    """The bottleneck's block pools 3 times inside at stride 2: same padding needs n = 16k; the rule
    the planner derives is the one planning every size finds."""
    from archgen.planner.build import size_rules
    from archgen.planner.layout import build_graph
    from archgen.planner.shapes import SizeError, infer_axis

    spec = config({"type": "rsu", "height": height, "interpolation": "linear"}, shape=(96, 1), padding=padding)
    rule = size_rules(spec)[0]
    nodes = list(build_graph(spec).nodes.values())
    legal = []
    for n in range(1, 400):
        try:
            infer_axis(nodes, n, 0)
            legal.append(n)
        except SizeError:
            pass
    sizes = (rule.period * k + rule.offset for k in range(rule.k_min, 400))
    assert legal == [n for n in sizes if n < 400]
    if padding == "same":
        assert legal[:3] == [16, 32, 48]


def test_a_decoder_rsu_block_whose_pooling_the_encoders_already_tiles_has_a_rule():
    """Level 1's rsu block pools by 2 inside, as the encoder's pool does: every even size is legal,
    one progression of period 2 (not none, as two residues modulo the product 4 would say)."""
    from archgen.planner.build import size_rules
    from archgen.planner.layout import build_graph
    from archgen.planner.shapes import SizeError, infer_axis

    spec = ArchSpec.model_validate({
        "input": {"shape": [None, 1]}, "padding": "valid",
        "encoder": {"depth": 1, "filters": 2, "block": {"type": "conv", "convs": 1, "kernel_size": 1}},
        "decoder": {"upsample": {"type": "transpose", "kernel_size": 2},
                    "block": {"type": "rsu", "kernel_size": 1, "height": 1, "interpolation": "nearest"}},
        "heads": [{"name": "out", "filters": 1}]})
    rule = size_rules(spec)[0]
    assert rule is not None and (rule.period, rule.offset % rule.period) == (2, 0)
    nodes = list(build_graph(spec).nodes.values())
    legal = []
    for n in range(1, 100):
        try:
            infer_axis(nodes, n, 0)
            legal.append(n)
        except SizeError:
            pass
    assert legal == [n for n in (rule.period * k + rule.offset for k in range(rule.k_min, 100)) if n < 100]
    assert make_plan(ArchSpec.model_validate({**spec.model_dump(exclude_unset=True),
                                              "input": {"shape": [62, 1]}})).output_shapes["out"] == (62, 1)


def test_keys_an_rsu_block_does_not_read_are_reported_unused():
    from archgen.config.unused import unused_options

    spec = config({"type": "rsu", "height": 1, "convs": 3, "dilations": [1, 2]})
    assert [(path, why) for path, _, why in unused_options(spec)] == [
        ("encoder.block.convs", "an rsu block's convs follow from its height"),
        ("encoder.block.dilations", "no level's height is dilated")]
    assert unused_options(config()) == []  # the dilated bottleneck reads them
