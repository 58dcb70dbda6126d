"""The convnext block, its down- and up-sampling forms and the conv-only stem, planned: layers,
channels, sizes and the errors that name the key to change."""

from __future__ import annotations

import pytest

from archgen.errors import PlanError
from archgen.planner import make_plan
from archgen.config import validate
from archgen.config.unused import unused_options


def config(**parts) -> dict:
    """A small 2D MedNeXt-like network (depth 2); ``parts`` replace its top-level sections."""
    data = {
        "name": "convnext",
        "input": {"shape": [32, 48, 1]},
        "padding": "same",
        "encoder": {"stem": {"kernel_size": 1, "conv_only": True},
                    "block": {"type": "convnext", "activation": "gelu", "norm": "instance", "expansion": 2},
                    "downsample": {"type": "block"},
                    "stages": [{"filters": 4, "stride": 1}, {"filters": 8, "stride": 2},
                               {"filters": 16, "stride": 2}]},
        "decoder": {"align": "none", "merge": {"type": "add"}, "upsample": {"type": "block"},
                    "stages": [{"filters": 4}, {"filters": 8}]},
        "heads": [{"name": "logits", "filters": 2}],
    }
    return {**data, **parts}


def with_block(**keys) -> dict:
    data = config()
    data["encoder"] = {**data["encoder"], "block": {**data["encoder"]["block"], **keys}}
    return data


def test_a_block_expands_its_input_channels_by_its_levels_ratio():
    plan = make_plan(validate(with_block(expansion=[2, 3, 5])))
    channels = {layer.name: layer.shape[-1] for layer in plan.layers}
    assert channels["enc1_expand"] == 2 * 4 and channels["enc1_compress"] == 4
    # The down block leaves level 1 (4 channels, ratio 2) for level 2's 8 filters.
    assert channels["enc1_down_expand"] == 2 * 4 and channels["enc1_down_compress"] == 8
    assert channels["enc2_down_expand"] == 3 * 8 and channels["bottleneck_expand"] == 5 * 16
    # The up block enters level 1 from level 2's 8 channels with level 1's ratio.
    assert channels["dec1_up_expand"] == 2 * 8 and channels["dec2_up_expand"] == 3 * 16


def test_the_up_block_reaches_factor_times_the_size_for_odd_and_even_kernels():
    for kernel in (3, 4, 5):
        data = config()
        data["decoder"] = {**data["decoder"], "stages": [{"filters": 4, "kernel_size": kernel},
                                                         {"filters": 8, "kernel_size": kernel}]}
        plan = make_plan(validate(data))
        shape = {layer.name: layer.shape for layer in plan.layers}
        # The transposed conv's full output, PyTorch's padding kernel // 2 cropped: (n - 1) * 2 + 1.
        assert shape["dec1_up_dwconv"][:2] == (15 * 2 + kernel, 23 * 2 + kernel)
        assert shape["dec1_up_crop"][:2] == (31, 47) == shape["dec1_up_proj"][:2]
        assert shape["dec1_up_pad"][:2] == (32, 48)
        assert plan.layer("dec1_up_crop").attrs["cropping"] == ((kernel // 2, kernel - 1 - kernel // 2),) * 2
        assert plan.layer("dec1_up_pad").attrs["padding"] == ((1, 0), (1, 0))


def test_without_residual_there_is_no_shortcut_and_no_addition():
    plan = make_plan(validate(with_block(residual=False)))
    assert not [layer.name for layer in plan.layers if layer.name.endswith(("_proj", "_residual"))]


def test_depthwise_convs_have_one_filter_per_channel():
    plan = make_plan(validate(config()))
    dw = plan.layer("enc2_dwconv")
    assert dw.kind == "depthwise_conv" and dw.shape[-1] == 8 and dw.params == 3 * 3 * 8 + 8
    up = plan.layer("dec1_up_dwconv")
    assert up.kind == "depthwise_conv_transpose" and up.shape[-1] == 8 and up.params == 3 * 3 * 8 + 8


def test_the_conv_only_stem_has_no_norm_nor_activation_and_a_bias_unless_the_block_says_none():
    plan = make_plan(validate(config()))
    assert [layer.name for layer in plan.layers if layer.name.startswith("stem")] == ["stem_conv1"]
    assert plan.layer("stem_conv1").attrs["use_bias"] and plan.layer("stem_conv1").params == 4 + 4
    assert not make_plan(validate(with_block(bias=False))).layer("stem_conv1").attrs["use_bias"]


def test_a_block_that_cannot_up_sample_is_refused_at_the_up_sampling():
    data = config()
    data["decoder"] = {**data["decoder"], "block": {"type": "residual"}}
    with pytest.raises(PlanError, match="a residual block cannot; use a block of type convnext") as info:
        make_plan(validate(data))
    assert info.value.path == "decoder.upsample.type"


def test_one_expansion_per_level_needs_one_per_level():
    with pytest.raises(PlanError, match="has 2 entries; encoder.depth=2 needs 3") as info:
        make_plan(validate(with_block(expansion=[2, 2])))
    assert info.value.path == "encoder.block.expansion"


def test_a_strided_depthwise_conv_does_not_dilate():
    with pytest.raises(PlanError, match="cannot dilate a strided conv") as info:
        make_plan(validate(with_block(dilation=2)))
    assert info.value.path == "encoder.block.dilation"


def test_convs_set_on_a_convnext_block_is_reported_unused():
    assert [(path, why.split(":")[0]) for path, _, why in unused_options(validate(with_block(convs=3)))] == \
        [("encoder.block.convs", "a convnext block's convs are fixed")]


def test_valid_padding_crops_the_shortcut():
    data = config(padding="valid")
    data["encoder"] = {**data["encoder"], "downsample": {"type": "maxpool"}}
    data["decoder"] = {**data["decoder"], "upsample": {"type": "transpose"}, "align": "crop"}
    plan = make_plan(validate({**data, "input": {"shape": [66, 70, 1]}}))
    crop = plan.layer("enc1_shortcut_crop")
    assert crop.attrs["cropping"] == ((1, 1), (1, 1)) and crop.shape == plan.layer("enc1_compress").shape
