"""The canonical stage form: the short form expands into it, it prints as YAML that builds the same
model, and explicit stages give per-stage filters, convs, blocks and per-axis kernels and strides."""

from __future__ import annotations

import pytest

import archgen
from archgen.errors import ArchgenError
from archgen.planner import make_plan
from archgen.config import load_spec
from archgen.config.resolve import resolve, resolved_yaml
from archgen.config.unused import unused_options
from tests.conftest import CONF

CONFIGS = sorted(CONF.glob("*.yaml")) + sorted((CONF / "peers").glob("*.yaml"))


def same_plan(a, b):
    assert [(l.name, l.kind, l.inputs, l.shape, l.params, l.attrs) for l in a.layers] == \
           [(l.name, l.kind, l.inputs, l.shape, l.params, l.attrs) for l in b.layers]
    assert a.outputs == b.outputs and a.axis_sizes == b.axis_sizes


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_round_trips_through_its_resolved_form(path):
    spec = load_spec(path)
    text = resolved_yaml(spec)
    again = archgen.load(text)
    given_as_built = again.encoder.type in ("backbone", "vit", "swin")  # no stages: a table row, or transformers
    assert (given_as_built or again.encoder.stages is not None) and again.decoder.stages is not None
    same_plan(make_plan(spec), make_plan(again))
    assert resolved_yaml(again).split("\n", 2)[2] == text.split("\n", 2)[2]  # resolving twice changes nothing
    assert unused_options(again) == []  # it reads back without a "does nothing here" warning


def test_short_form_expands_to_stages():
    r = resolve(load_spec(CONF / "unet3d.yaml"))
    assert [s.filters for s in r.encoder.stages] == [64, 128, 256, 512]
    assert [s.stride for s in r.encoder.stages] == [[1, 1, 1], [2, 2, 2], [2, 2, 2], [2, 2, 2]]
    # keep_channels: the up-convolution keeps the channels of the stage below
    assert [s.up_filters for s in r.decoder.stages] == [128, 256, 512]


STAGES_2D = """
input: {shape: [64, 48, 1]}
encoder:
  downsample: {type: stride}
  block: {norm: instance, activation: leaky_relu, negative_slope: 0.01, bias: true}
  stages:
    - {filters: 8, convs: 1, kernel_size: [3, 1]}
    - {filters: 16, convs: 2, kernel_size: 3, stride: [2, 1]}
    - {filters: 24, convs: 3, kernel_size: [1, 3], stride: 2}
decoder:
  stages:
    - {filters: 4, convs: 1}
    - {filters: 12, up_filters: 6, kernel_size: [3, 1]}
heads: [{name: out, filters: 2}]
"""


def test_explicit_stages_with_per_axis_kernels_and_strides():
    plan = archgen.plan(STAGES_2D)
    assert plan.layer("enc1_conv1").attrs["kernel"] == (3, 1)
    assert plan.layer("enc2_conv1").attrs["stride"] == (2, 1) and plan.layer("enc2_conv1").shape == (32, 48, 16)
    assert plan.layer("enc2_conv1_pad").attrs["padding"] == ((1, 1), (1, 1))  # PyTorch's symmetric padding
    assert plan.layer("bottleneck_conv3").shape == (16, 24, 24)
    assert plan.layer("dec2_up").shape == (32, 48, 6) and plan.layer("dec2_up").attrs["stride"] == 2
    assert plan.layer("dec1_up").attrs["stride"] == (2, 1) and plan.layer("dec1_conv1").shape == (64, 48, 4)
    assert plan.layer("enc1_norm1").params == 16 and plan.layer("enc1_act1").attrs["negative_slope"] == 0.01
    rule_h, rule_w = plan.axis_sizes
    assert (rule_h.period, rule_w.period) == (4, 2) and plan.sizes is None


@pytest.mark.parametrize("override, message", [
    ("encoder.filters=32", "encoder.filters=32: encoder.stages gives these per stage; remove encoder.filters"),
    ("encoder.block.kernel_size=5", "encoder.block.kernel_size=5: encoder.stages gives these per stage"),
    ("encoder.stages.0.stride=2", "encoder.stages[0].stride=2: the first stage reads the input; only "),
    ("encoder.stages.1.kernel_size=[3,3,3]", "encoder.stages[1].kernel_size=[3, 3, 3]: has 3 entries; the input "
                                             "has 2 spatial axes"),
    ("decoder.stages=[{filters: 4}]", "decoder.stages=1 stages: has 1 entries; the encoder has 3 stages, "
                                      "so the decoder needs 2"),
])
def test_stage_errors_name_the_key(override, message):
    data = __import__("yaml").safe_load(STAGES_2D)
    data["encoder"]["downsample"] = {"type": "maxpool"} if "stages.0.stride" in override else data["encoder"]["downsample"]
    if "stages.0.stride" in override:
        for stage in data["encoder"]["stages"][1:]:
            stage["stride"] = 2
    with pytest.raises(ArchgenError) as info:
        archgen.plan(data, [override])
    assert info.value.render().startswith(message), info.value.render()


RESENC_2D = """
input: {shape: [32, 24, 2]}
encoder:
  stem: {filters: 6, kernel_size: [3, 1]}
  downsample: {type: stride}
  block: {type: residual, shortcut: resnet_d, norm: instance, activation: leaky_relu, negative_slope: 0.01,
          bias: true}
  stages:
    - {filters: 6, blocks: 1}
    - {filters: 8, blocks: 2, stride: 2}
    - {filters: 8, blocks: 1, stride: [2, 1]}
decoder:
  block: {type: conv, norm: instance, activation: leaky_relu, negative_slope: 0.01, bias: true}
  stages:
    - {filters: 6, convs: 1}
    - {filters: 8, convs: 1}
heads: [{name: out, filters: 2}]
"""


def test_stem_and_resnet_d_shortcuts():
    """nnU-Net's ResidualEncoder: a stem, then BasicBlockD blocks whose shortcut average-pools by the
    stride and projects (1x1 conv without bias, then the norm) only where channels change."""
    plan = archgen.plan(RESENC_2D)
    names = [layer.name for layer in plan.layers]
    assert names[1:4] == ["stem_conv1", "stem_norm1", "stem_act1"] and plan.layer("stem_conv1").attrs["kernel"] == (3, 1)
    assert plan.layer("stem_conv1").params == 3 * 2 * 6 + 6 and plan.layer("stem_conv1").group == "enc1"
    assert not any(n.startswith("enc1_proj") or n.startswith("enc1_shortcut") for n in names)  # identity: 6 -> 6
    pool, proj = plan.layer("enc2_block1_shortcut_pool"), plan.layer("enc2_block1_proj")
    assert pool.kind == "avgpool" and pool.attrs["factor"] == 2 and pool.shape == (16, 12, 6)
    assert proj.params == 6 * 8 and not proj.attrs["use_bias"] and proj.inputs == (pool.name,)
    assert plan.layer("enc2_block1_residual").inputs == ("enc2_block1_norm2", "enc2_block1_proj_norm")
    assert not any(n.startswith("enc2_block2_proj") or n.startswith("enc2_block2_shortcut") for n in names)
    # stride without a change of channels: the pool alone
    assert plan.layer("bottleneck_shortcut_pool").attrs["factor"] == (2, 1)
    assert plan.layer("bottleneck_residual").inputs == ("bottleneck_norm2", "bottleneck_shortcut_pool")
    assert "dec1_residual" not in names and plan.layer("dec1_act1").attrs["negative_slope"] == 0.01
    # the canonical form keeps the stem, spelled out
    r = resolve(archgen.load(RESENC_2D))
    assert r.encoder.stem.filters == 6 and r.encoder.stem.kernel_size == [3, 1]
    default_stem = resolve(archgen.load(RESENC_2D.replace("{filters: 6, kernel_size: [3, 1]}", "{}")))
    assert default_stem.encoder.stem.filters == 6 and default_stem.encoder.stem.kernel_size == [3, 3]


def test_plain_shortcut_projects_with_a_strided_conv():
    plan = archgen.plan(RESENC_2D.replace("shortcut: resnet_d", "shortcut: plain"))
    assert plan.layer("enc2_block1_proj").attrs["stride"] == 2 and plan.layer("enc2_block1_proj").attrs["use_bias"]
    assert "enc2_block1_shortcut_pool" not in [layer.name for layer in plan.layers]
    assert plan.layer("bottleneck_proj").attrs["stride"] == (2, 1)
