"""Recurrent residual blocks, squeeze-and-excitation and the transformer bottleneck in the planner:
layer order, counts from first principles, FLOPs, legal sizes and errors (no TensorFlow here)."""

from __future__ import annotations

import pytest

from archgen.errors import PlanError
from archgen.planner import make_plan
from archgen.config import validate
from archgen.config.resolve import resolve, resolved_yaml


def config(block=None, transformer=None, shape=(32, 32, 3), padding="same", depth=2, filters=4, **top):
    encoder = {"depth": depth, "filters": filters, "block": block or {}}
    if transformer is not None:
        encoder["transformer"] = transformer
    return validate({"input": {"shape": list(shape)}, "padding": padding, "encoder": encoder,
                     "heads": [{"name": "logits", "filters": 2}], **top})


def names(plan, prefix):
    return [layer.name for layer in plan.layers if layer.name.startswith(prefix + "_")]


def test_recurrent_block_layers_in_order_and_counted():
    plan = make_plan(config({"type": "recurrent_residual", "convs": 2, "recurrences": 2}))
    assert names(plan, "enc1") == [
        "enc1_in",
        "enc1_unit1_conv0", "enc1_unit1_add1", "enc1_unit1_conv1", "enc1_unit1_add2", "enc1_unit1_conv2",
        "enc1_unit2_conv0", "enc1_unit2_add1", "enc1_unit2_conv1", "enc1_unit2_add2", "enc1_unit2_conv2",
        "enc1_residual", "enc1_pool"]
    level1 = sum(layer.params for layer in plan.layers if layer.group == "enc1")
    assert level1 == (3 * 4 + 4) + 2 * 3 * (9 * 4 * 4 + 4)  # the 1x1 conv, then 2 units of 1 + 2 convs
    assert plan.layer("enc1_unit1_add2").inputs == ("enc1_unit1_conv1", "enc1_in")  # x + the last output
    assert plan.layer("enc1_residual").inputs == ("enc1_unit2_conv2", "enc1_in")


def test_recurrent_block_with_valid_padding_crops_before_each_addition():
    plan = make_plan(config({"type": "recurrent_residual", "convs": 1, "recurrences": 2}, shape=(64, 1),
                            padding="valid", depth=1))
    assert plan.layer("enc1_unit1_crop1").attrs["cropping"] == ((1, 1),)
    assert plan.layer("enc1_unit1_crop2").attrs["cropping"] == ((2, 2),)
    assert plan.layer("enc1_shortcut_crop").attrs["cropping"] == ((3, 3),)
    assert plan.layer("enc1_residual").shape == (58, 4)


def test_recurrent_block_refuses_inner_ratio():
    with pytest.raises(PlanError) as info:
        make_plan(config({"type": "recurrent_residual", "inner_ratio": 0.5}))
    assert info.value.path == "encoder.block.inner_ratio"


@pytest.mark.parametrize("kind, before_add", [("conv", False), ("residual", True), ("recurrent_residual", True)])
def test_se_follows_the_last_conv_and_precedes_the_residual_addition(kind, before_add):
    plan = make_plan(config({"type": kind, "se": {"ratio": 2}}, filters=8))
    pool = plan.layer("enc1_se_pool")
    assert pool.shape == (1, 1, 8)
    assert plan.layer("enc1_se_reduce").params == 8 * 4 + 4 and plan.layer("enc1_se_expand").params == 4 * 8 + 8
    assert plan.layer("enc1_se_scale").inputs == (pool.inputs[0], "enc1_se_expand")
    if before_add:
        assert "enc1_se_scale" in plan.layer("enc1_residual").inputs
    else:
        assert pool.inputs[0] == "enc1_conv2"  # after the conv's fused activation
    assert plan.layer("enc1_se_expand").attrs["activation"] == "sigmoid"


def test_se_keeps_open_sizes_open_and_its_gate_at_one():
    plan = make_plan(config({"se": {"ratio": 4}}, shape=(None, None, 1)))
    assert plan.layer("enc1_se_reduce").shape == (1, 1, 1)
    assert plan.layer("enc1_se_scale").shape == (None, None, 4)


TRANSFORMER = {"embed_dim": 8, "layers": 2, "heads": 2, "mlp_dim": 16}


def test_transformer_counts_and_flops_from_first_principles():
    plan = make_plan(config(transformer=TRANSFORMER))  # bottleneck 8x8x16
    e, h, kd, n, c = 8, 2, 4, 64, 16
    assert plan.layer("bottleneck_vit_patch").params == c * e + e
    assert plan.layer("bottleneck_vit_pos").params == n * e
    attn = plan.layer("bottleneck_vit1_attn")
    assert attn.params == 3 * (e * h * kd + h * kd) + h * kd * e + e
    assert attn.flops == 2 * n * (4 * e * h * kd) + 2 * 2 * n * n * h * kd
    assert plan.layer("bottleneck_vit1_mlp1").flops == 2 * n * e * 16
    assert plan.layer("bottleneck_vit_out").shape == (8, 8, c)
    assert plan.layer("bottleneck_vit_out").params == e * c  # no bias by default
    assert names(plan, "bottleneck_vit1") == [
        "bottleneck_vit1_norm1", "bottleneck_vit1_attn", "bottleneck_vit1_add1", "bottleneck_vit1_norm2",
        "bottleneck_vit1_mlp1", "bottleneck_vit1_mlp_act1", "bottleneck_vit1_mlp2", "bottleneck_vit1_add2"]


def test_transformer_patches_larger_than_one_set_the_legal_sizes():
    plan = make_plan(config(transformer={**TRANSFORMER, "patch_size": 2}))
    assert plan.layer("bottleneck_vit_patch").shape == (4, 4, 8)
    assert plan.layer("bottleneck_vit_out").kind == "conv_transpose"
    assert plan.layer("bottleneck_vit_out").shape == (8, 8, 16)
    assert plan.sizes.period == 8 and plan.sizes.is_legal(32) and not plan.sizes.is_legal(36)
    with pytest.raises(PlanError) as info:
        make_plan(config(transformer={**TRANSFORMER, "patch_size": 2}, shape=(36, 36, 3)))
    assert info.value.path == "input.shape" and "32" in info.value.render()


def test_transformer_reads_every_position():
    with_vit = make_plan(config(transformer=TRANSFORMER))
    from archgen.planner.cost import receptive_field

    assert receptive_field(with_vit) > receptive_field(make_plan(config()))
    assert receptive_field(with_vit) >= 32


@pytest.mark.parametrize("change, path", [
    ({"heads": 3}, "encoder.transformer.heads"),
])
def test_transformer_errors_name_the_key(change, path):
    with pytest.raises(PlanError) as info:
        make_plan(config(transformer={**TRANSFORMER, **change}))
    assert info.value.path == path


def test_transformer_needs_a_fixed_size():
    with pytest.raises(PlanError) as info:
        make_plan(config(transformer=TRANSFORMER, shape=(None, 32, 3)))
    assert info.value.path == "input.shape" and "position embedding" in info.value.render()


def test_the_new_options_survive_the_canonical_form():
    spec = config({"type": "recurrent_residual", "recurrences": 1, "se": {"ratio": 2}}, transformer=TRANSFORMER,
                  decoder={"upsample": {"type": "resize", "norm": "batch", "activation": "relu"}})
    text = resolved_yaml(spec)
    for key in ("recurrent_residual", "recurrences: 1", "ratio: 2", "embed_dim: 8", "norm: batch"):
        assert key in text
    assert make_plan(resolve(spec)).layers == make_plan(spec).layers


def test_resize_with_batch_norm_drops_the_conv_bias():
    plan = make_plan(config(decoder={"upsample": {"type": "resize", "kernel_size": 3, "norm": "batch",
                                                  "activation": "relu"}}))
    assert plan.layer("dec1_upconv").params == 9 * 8 * 4  # 8 channels in, 4 out, no bias
    assert [plan.layer(n).kind for n in ("dec1_upnorm", "dec1_upact")] == ["norm", "activation"]


def test_attention_keeps_its_scores_for_the_backward_pass():
    from archgen.planner.cost import _saved_by, layer_elements

    plan = make_plan(config(transformer=TRANSFORMER))
    elements = layer_elements(plan)
    saved, extra = _saved_by(plan.layer("bottleneck_vit1_attn"), elements)
    assert saved == ["bottleneck_vit1_norm1"] and extra == 2 * 2 * 64 * 64  # 2 heads, 64 tokens
