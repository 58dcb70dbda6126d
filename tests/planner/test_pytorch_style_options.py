"""Options for networks built the PyTorch way, planned without Keras: PyTorch's transposed-conv
padding, skips joined before up-sampling, decoder levels without convs, a plain last conv, heads
without a conv, MONAI's residual unit and gate, activation before norm; their errors and warnings."""

from __future__ import annotations

import pytest

import archgen
from archgen.errors import PlanError, SpecError
from archgen.config.unused import unused_options

TINY = """
input: {shape: [32, 32, 1]}
encoder: {depth: 1, filters: 4}
decoder:
  skips: none
  align: none
  upsample: {type: transpose, kernel_size: %(k)d, padding: %(p)d, output_padding: %(op)d}
heads: [{name: out, filters: 1}]
"""

MERGE_FIRST = """
input: {shape: [64, 48, 1]}
encoder:
  downsample: {type: stride}
  block: {type: residual, norm: instance, activation: prelu, shortcut_kernel_size: block, shortcut_norm: false,
          add_at: after_activation}
  stages: [{filters: 4, stride: 2}, {filters: 8, stride: 2}, {filters: 16, stride: 1}]
decoder:
  align: none
  merge: {type: concat, order: skip_up}
  merge_at: before_upsample
  last_conv_only: true
  upsample: {type: transpose, kernel_size: 3, padding: 1, output_padding: 1, norm: instance, activation: prelu}
  stages: [{filters: 3, convs: %(convs)d}, {filters: 4, convs: %(convs)d}]
heads: [{name: logits, filters: 3, conv: false}]
"""


@pytest.mark.parametrize("k, p, op", [(3, 1, 1), (3, 1, 0), (4, 1, 0), (2, 0, 0), (5, 2, 1), (3, 0, 0)])
def test_pytorch_padding_gives_pytorchs_output_size(k, p, op):
    plan = archgen.plan(TINY % dict(k=k, p=p, op=op))
    n = 16  # after the pooling
    assert plan.layer("dec1_up").shape[0] == (n - 1) * 2 + k  # the full output, then the crop
    assert plan.output_shapes["out"][0] == (n - 1) * 2 - 2 * p + k + op  # torch.nn.ConvTranspose2d's size


def test_same_padding_keeps_keras_behaviour():
    plan = archgen.plan(TINY.replace(", padding: %(p)d, output_padding: %(op)d", "") % dict(k=3))
    assert plan.layer("dec1_up").attrs["padding"] == "same" and plan.output_shapes["out"][0] == 32
    assert "dec1_up_crop" not in [layer.name for layer in plan.layers]


def test_output_padding_beyond_the_padding_or_without_one_is_refused():
    with pytest.raises(PlanError) as info:
        archgen.plan(TINY % dict(k=3, p=1, op=2))
    assert info.value.path == "decoder.upsample.output_padding" and "at most 1" in str(info.value)
    with pytest.raises(PlanError) as info:
        archgen.plan(TINY.replace("padding: %(p)d, ", "") % dict(k=3, op=1))
    assert info.value.path == "decoder.upsample.output_padding"


@pytest.mark.parametrize("convs", [1, 0])
def test_skips_joined_before_upsampling(convs):
    plan = archgen.plan(MERGE_FIRST % dict(convs=convs))
    names = [layer.name for layer in plan.layers]
    # the deepest level joins the bottleneck (16 ch) and the skip (8 ch) at 1/4, then up-samples to 1/2
    assert plan.layer("dec2_concat").inputs == ("enc2_residual", "bottleneck_residual")
    assert plan.layer("dec2_concat").shape == (16, 12, 24)
    assert plan.layer("dec2_up").shape == (33, 25, 4) and plan.layer("dec2_up_crop").shape == (32, 24, 4)
    assert names.index("dec2_up_crop") < names.index("dec2_up_norm") < names.index("dec2_up_act")
    assert plan.output_shapes["logits"] == (64, 48, 3)
    assert plan.layer("logits").kind == "activation" and plan.layer("logits").params == 0
    if convs:  # level 1's conv is plain; nothing after its residual addition
        assert plan.layer("logits").inputs == ("dec1_residual",)
        assert plan.layer("dec1_conv1").attrs["activation"] == "linear"
        assert not {"dec1_norm1", "dec1_act1", "dec1_act"} & set(names)
        assert {"dec2_norm1", "dec2_act1"} <= set(names) and "dec2_act" not in names  # added after its activation
    else:  # the up-sampling is level 1's last conv: no norm, no activation
        assert plan.layer("logits").inputs == ("dec1_up_crop",)
        assert not {"dec1_up_norm", "dec1_up_act", "dec1_conv1"} & set(names)


def test_monai_residual_unit_shortcut():
    plan = archgen.plan(MERGE_FIRST % dict(convs=1))
    names = [layer.name for layer in plan.layers]
    # strided: a 3x3 conv with PyTorch's padding, without norm; the bottom (stride 1) a 1x1 conv
    assert plan.layer("enc2_proj").attrs["kernel"] == 3 and plan.layer("enc2_proj").inputs == ("enc2_proj_pad",)
    assert plan.layer("bottleneck_proj").attrs["kernel"] == 1
    assert not any(name.endswith("_proj_norm") for name in names)
    assert plan.layer("enc2_residual").inputs == ("enc2_act2", "enc2_proj")


def test_merge_first_needs_a_bottleneck_that_keeps_the_size():
    with pytest.raises(PlanError) as info:
        archgen.plan(MERGE_FIRST.replace("{filters: 16, stride: 1}", "{filters: 16, stride: 2}") % dict(convs=1))
    assert info.value.path == "encoder.stages[2].stride" and "stride 1" in str(info.value)


def test_last_conv_only_needs_a_conv_at_level_1():
    text = MERGE_FIRST.replace("  merge_at: before_upsample\n", "") % dict(convs=0)
    text = text.replace("stride: 2}, {filters: 8", "stride: 1}, {filters: 8").replace("{filters: 16, stride: 1}",
                                                                                       "{filters: 16, stride: 2}")
    with pytest.raises(PlanError) as info:
        archgen.plan(text)
    assert info.value.path == "decoder.last_conv_only"


def test_a_head_without_conv_must_name_the_levels_channels():
    with pytest.raises(PlanError) as info:
        archgen.plan((MERGE_FIRST % dict(convs=1)).replace("filters: 3, conv: false", "filters: 2, conv: false"))
    assert info.value.path == "heads[0].filters" and "set filters: 3" in str(info.value)


def test_gate_norms_and_bias():
    text = """
input: {shape: [32, 32, 1]}
encoder: {depth: 1, filters: 4}
decoder: {merge: {type: attention, norm: batch, skip_bias: true, order: skip_up}}
heads: [{name: out, filters: 1}]
"""
    plan = archgen.plan(text)
    assert plan.layer("dec1_attn_x").params == 4 * 2 + 2  # with its bias now
    assert [plan.layer(f"dec1_attn_{c}_norm").params for c in ("x", "g", "psi")] == [8, 8, 4]
    assert plan.layer("dec1_attn_psi").attrs["activation"] == "linear"
    assert plan.layer("dec1_attn_sigmoid").inputs == ("dec1_attn_psi_norm",)
    assert plan.layer("dec1_concat").inputs == ("dec1_attn_gate", "dec1_up")


def test_activation_before_norm():
    text = """
input: {shape: [32, 32, 1]}
encoder: {depth: 1, filters: 4, block: {norm: batch, activation: %s, order: act_norm}}
heads: [{name: out, filters: 1}]
"""
    plan = archgen.plan(text % "relu")  # the conv applies relu itself, then the norm
    assert plan.layer("enc1_conv1").attrs["activation"] == "relu"
    assert plan.layer("enc1_norm1").inputs == ("enc1_conv1",)
    plan = archgen.plan(text % "prelu")  # a layer of its own between them
    assert plan.layer("enc1_act1").inputs == ("enc1_conv1",) and plan.layer("enc1_norm1").inputs == ("enc1_act1",)


def test_options_that_do_nothing_are_reported():
    spec = archgen.load("""
input: {shape: [32, 32, 1]}
encoder: {depth: 1, filters: 4, block: {type: residual, shortcut: resnet_d, shortcut_kernel_size: 3,
                                        shortcut_norm: false, order: act_norm}}
decoder: {upsample: {norm_epsilon: 1.0e-5, groups: 2}, merge: {type: attention, norm_epsilon: 1.0e-5}}
heads: [{name: out, filters: 4, conv: false, kernel_size: 3}]
""")
    found = {path for path, _, _ in unused_options(spec)}
    assert found == {"encoder.block.shortcut_kernel_size", "encoder.block.shortcut_norm", "encoder.block.order",
                     "decoder.upsample.norm_epsilon", "decoder.upsample.groups", "decoder.merge.norm_epsilon",
                     "heads[0].kernel_size"}


def test_last_conv_only_refuses_interpolate_as_the_last_layer():
    """Joined before up-sampling with no convs at level 1, the up-sampling is the last layer: an
    interpolate has no conv to leave plain."""
    text = (MERGE_FIRST % dict(convs=0)).replace(
        "upsample: {type: transpose, kernel_size: 3, padding: 1, output_padding: 1, norm: instance, activation: prelu}",
        "upsample: {type: interpolate}")
    with pytest.raises(PlanError) as info:
        archgen.plan(text)
    assert info.value.path == "decoder.last_conv_only" and "interpolate has no conv" in str(info.value)


SLOPED = """
input: {shape: [32, 32, 1]}
encoder:
  depth: 2
  filters: 4
  downsample: {type: conv, activation: leaky_relu, negative_slope: 0.01%(down_norm)s}
decoder:
  upsample: {type: %(up)s, activation: leaky_relu, negative_slope: 0.01%(up_norm)s}
heads: [{name: out, filters: 1}]
"""


@pytest.mark.parametrize("up", ["transpose", "resize"])
@pytest.mark.parametrize("norm", ["", ", norm: instance"])
def test_the_sampling_layers_take_a_leaky_relu_slope(up, norm):
    """PyTorch's LeakyReLU slope is 0.01, Keras's 0.2: a strided conv's or an up-sampling's slope
    is the one given, on a layer of its own (a conv cannot carry a slope)."""
    plan = archgen.plan(SLOPED % {"down_norm": norm, "up": up, "up_norm": norm})
    slopes = [(n.name, n.attrs.get("negative_slope")) for n in plan.layers if n.attrs.get("activation") == "leaky_relu"]
    assert {name.split("_")[0] for name, _ in slopes} == {"enc1", "enc2", "dec1", "dec2"}
    assert all(slope == 0.01 for _, slope in slopes) and all(n.kind == "activation" for n in plan.layers
                                                                if n.attrs.get("activation") == "leaky_relu")


def test_a_slope_beside_another_activation_is_refused():
    config = SLOPED % {"down_norm": "", "up": "transpose", "up_norm": ""}
    with pytest.raises(SpecError, match=r"decoder.upsample.negative_slope=0.01: only leaky_relu takes a negative "
                                        r"slope, and the activation here is linear; remove negative_slope"):
        archgen.plan(config.replace("transpose, activation: leaky_relu", "transpose"))


@pytest.mark.parametrize("kernel, factor, ok", [(3, 2, True), (2, 2, True), (4, 3, True), (5, 3, True),
                                                (3, 3, False), (1, 2, False), (4, 4, False), (6, 4, True)])
def test_centered_padding_gives_factor_times_the_input_or_is_refused(kernel, factor, ok):
    """PyTorch's padding (k - 1) // 2 and output_padding s - 1 - (k - 1) % 2 (MONAI's UpSample given a
    kernel): the output is s x the input wherever the output_padding stays within the padding."""
    config = (f"input: {{shape: [48, 1]}}\npadding: same\nencoder: {{depth: 1, filters: 2, downsample: {{factor: "
              f"{factor}}}}}\ndecoder:\n  upsample: {{type: transpose, kernel_size: {kernel}, padding: centered}}\n"
              f"heads: [{{name: out, filters: 1}}]\n")
    if not ok:
        with pytest.raises(PlanError, match=r"decoder.upsample.kernel_size=\d: centered padding .* rows only the bias "
                                            r"reaches; give a kernel of at least 2 x stride - 2"):
            archgen.plan(config)
        return
    plan = archgen.plan(config)
    amounts = ((kernel - 1) // 2, (kernel - 1) // 2 - (factor - 1 - (kernel - 1) % 2))
    last = "dec1_up_crop" if any(amounts) else "dec1_up"  # a crop of nothing is left out
    assert plan.layer(last).shape == (48, 2)
    if any(amounts):
        assert plan.layer(last).attrs["amounts"] == (amounts,)
