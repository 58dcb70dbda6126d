"""A keras.applications encoder in the planner, without TensorFlow: taps, sizes, counts, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archgen.backbones import BACKBONES
from archgen.errors import ArchgenError
from archgen.planner import make_plan
from archgen.config import load_spec
from tests.conftest import CONF, ROOT

SMP = CONF / "peers" / "smp_unet_resnet50.yaml"


def plan(*overrides: str):
    return make_plan(load_spec(SMP, list(overrides)))


def refused(*overrides: str) -> ArchgenError:
    with pytest.raises(ArchgenError) as info:
        plan(*overrides)
    return info.value


def test_taps_feed_the_decoder_at_their_strides():
    p = plan("input.shape=[64,96,3]")
    row = BACKBONES["resnet50"]
    for tap in row.taps:
        assert p.layer(f"backbone_s{tap.stride}").shape == (64 // tap.stride, 96 // tap.stride, tap.channels)
    assert p.layer("backbone").params == row.params == 23_587_712
    # The level-L skip is the stride 2^(L-1) tap; level 1 (full resolution) has none in ResNet50.
    assert p.layer("dec2_concat").inputs == ("dec2_up", "backbone_s2")
    assert p.layer("dec5_concat").inputs == ("dec5_up", "backbone_s16")
    assert p.layer("dec5_up").inputs == ("backbone_s32",)
    assert "dec1_concat" not in {layer.name for layer in p.layers}
    assert p.output_shapes == {"mask": (64, 96, 1)}


def test_params_and_flops_are_the_table_plus_the_decoder():
    p = plan()
    row = BACKBONES["resnet50"]
    decoder = [layer for layer in p.layers if layer.group.startswith("dec") or layer.group == "head"]
    assert p.total_params == row.params + sum(layer.params for layer in decoder) == 32_602_769
    # TensorFlow's profiler counts 7,711,850,496 for ResNet50's convs at 224x224 (test_table_vs_profiler.py)
    assert p.layer("backbone").flops == row.flops(224, 224) == 7_711_850_496
    assert p.total_flops == row.flops(224, 224) + sum(layer.flops for layer in decoder)


def test_legal_sizes_are_multiples_of_32_with_the_nearest_offered():
    assert plan().sizes.describe("n") == "n = 32k, k >= 1"
    err = refused("input.shape=[100,100,3]")
    assert err.path == "input.shape"
    assert "not a multiple of 32" in err.message and "96 (output 96), 128 (output 128)" in err.hint


def test_vgg_has_a_full_resolution_tap_and_convnext_starts_at_stride_4():
    vgg = plan("encoder.name=vgg16", "input.shape=[64,64,3]")
    assert vgg.layer("dec1_concat").inputs == ("dec1_up", "backbone_s1")
    convnext = plan("encoder.name=convnexttiny", "input.shape=[64,64,3]")
    names = {layer.name for layer in convnext.layers}
    assert "dec3_concat" in names and "dec2_concat" not in names and "dec1_concat" not in names


def test_default_decoder_is_segmentation_models():
    p = plan("~decoder.stages")
    assert [p.layer(f"dec{level}_conv2").shape[-1] for level in range(1, 6)] == [16, 32, 64, 128, 256]


@pytest.mark.parametrize("overrides, path, words", [
    (["encoder.name=resnet5"], "encoder.name", "did you mean 'resnet50'"),
    (["encoder.name=ResNet50"], "encoder.name", "did you mean 'resnet50'"),
    (["encoder.weights=imagenett"], "encoder.weights", "did you mean 'imagenet'"),
    (["encoder.weights=weights.npz"], "encoder.weights", ".weights.h5"),
    (["+encoder.depth=4"], "encoder.depth", "does not apply to type=backbone"),
    (["input.shape=[64,64,1]"], "input.shape", "encoder.adapter: true"),
    (["input.shape=[64,64,64,3]"], "input.shape", "2D images"),
    (["encoder.trainable=6"], "encoder.trainable", "has 5 stages"),
    (["decoder.stages=[{filters: 8}]"], "decoder.stages", "needs 5 stages"),
    (["decoder.skips=[1]"], "decoder.skips[0]", "no tap at stride 1"),
    (["+decoder.upsample.factor=4"], "decoder.upsample.factor", "up-samples by 2"),
    (["+decoder.type=unet++"], "decoder.type", "feeds decoder.type unet only"),
    (["+decoder.type=unet3+"], "decoder.type", "feeds decoder.type unet only"),
    (["+decoder.merge_at=before_upsample"], "decoder.merge_at", "use merge_at: after_upsample"),
    (["+encoder.transformer={patch_size: 1}"], "encoder.transformer", "does not apply to type=backbone"),
    (["+decoder.last_conv_only=true", ("decoder.stages=[{filters: 16, convs: 0},{filters: 32},{filters: 64},"
                                       "{filters: 128},{filters: 256}]")], "decoder.last_conv_only",
     "no conv to leave plain"),
])
def test_errors_name_the_key(overrides, path, words):
    err = refused(*overrides)
    assert err.path == path and words in err.render(), err.render()


def test_an_adapter_maps_other_channels_to_rgb():
    p = plan("input.shape=[64,64,1]", "+encoder.adapter=true")
    assert p.layer("backbone_adapter").params == 1 * 3 + 3
    assert p.layer("backbone").inputs == ("backbone_adapter",)
    assert p.total_params == plan("input.shape=[64,64,3]").total_params + 6


def test_summary_shows_the_backbone_as_one_block_with_its_taps(cli):
    code, out, _ = cli("summary", SMP, "--wide")
    assert code == 0
    assert "backbone" in out and "ResNet50 weights none, all learn" in out
    for tap, layer in (("backbone_s2", "conv1_relu"), ("backbone_s32", "conv5_block3_out")):
        assert any(tap in line and layer in line for line in out.splitlines())
    assert "keras.applications.ResNet50(include_top=False)" in out
    assert not [line for line in out.splitlines() if "conv2_block1" in line]  # no inner layer of ResNet50


def test_diagram_draws_the_backbone_as_one_block(cli, tmp_path):
    code, _, _ = cli("diagram", SMP, "-o", tmp_path / "smp.svg")
    assert code == 0
    svg = (tmp_path / "smp.svg").read_text()
    assert svg.count('class="backbone"') == 1 and "backbone ResNet50: 23,587,712 params" in svg
    for stride in (2, 4, 8, 16, 32):
        assert f"backbone_s{stride} " in svg
    assert svg.count('class="skip"') == 4 and svg.count('class="up"') == 5


def test_resolved_form_keeps_the_backbone(cli):
    code, out, _ = cli("summary", SMP, "--resolved")
    assert code == 0 and "type: backbone" in out and "name: resnet50" in out and "skips: [2, 3, 4, 5]" in out


def test_backbone_plans_never_import_tensorflow():
    code = ("import sys; from archgen.cli import main; "
            f"main(['summary', {str(SMP)!r}]); main(['diagram', {str(SMP)!r}, '-o', '-']); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'jax', 'torch')]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_up_filters_with_interpolation_are_reported_as_unused():
    from archgen.config.unused import unused_options

    spec = load_spec(SMP, ["decoder.stages=[{filters: 16, up_filters: 4},{filters: 32},{filters: 64},"
                           "{filters: 128},{filters: 256}]"])
    assert [path for path, _, _ in unused_options(spec)] == ["decoder.stages[0].up_filters"]
    assert make_plan(spec).layer("dec1_up").shape[-1] == 32  # the channels of the level below stay


def test_decoder_options_of_the_unet_work_on_a_backbone():
    """The decoder's blocks and PyTorch-style options are the U-Net's: each shows in the plan."""
    base = plan("input.shape=[64,64,3]")
    last = plan("input.shape=[64,64,3]", "+decoder.last_conv_only=true")
    names = {layer.name for layer in last.layers}
    assert last.layer("dec1_conv2").attrs["activation"] == "linear" and "dec1_norm2" not in names
    assert "dec2_norm2" in names  # only level 1's last conv is left plain
    assert last.total_params == base.total_params - 4 * 16  # dec1_norm2: scale, offset, moving mean and variance
    se = plan("input.shape=[64,64,3]", "+decoder.block={se: {ratio: 8}}")
    assert se.layer("dec1_se_pool").kind == "global_pool" and se.total_params > base.total_params
    r2 = plan("input.shape=[64,64,3]", "+decoder.block={type: recurrent_residual}")
    assert "dec1_unit1_conv0" in {layer.name for layer in r2.layers}
    normed = plan("input.shape=[64,64,3]", "decoder.upsample={type: resize, norm: batch}")
    assert normed.layer("dec1_upnorm").kind == "norm" and normed.layer("dec1_upconv").attrs["use_bias"] is False


def test_receptive_fields_per_axis_with_a_backbone():
    from archgen.planner.cost import receptive_fields

    # The backbone reads its whole input: every output position sees all of it, on each axis.
    assert receptive_fields(plan("input.shape=[64,96,3]")) == (64, 96)


def test_tiling_reads_the_backbone_as_seeing_the_whole_map():
    from archgen.tiling.geometry import _plan_head_scale, _plan_period, plan_geometry

    p = plan("input.shape=[64,96,3]")
    assert not plan_geometry(p).exact  # its convs pad at the tile's border
    assert _plan_period(p, 2) == (32, 32)  # the backbone's total stride; the decoder's up-sampling not counted
    assert _plan_head_scale(p, "mask", 2) == (1, 1)  # down 32 through the backbone, up 2 x 5 in the decoder


@pytest.mark.parametrize("width", [60, 80])
def test_summary_of_a_backbone_fits_the_terminal(width):
    import io

    from rich.console import Console

    from archgen.planner.cost import plan_cost
    from archgen.report.summary import print_summary

    p = plan()
    out = io.StringIO()
    print_summary(p, Console(file=out, width=width, force_terminal=True, color_system=None, highlight=False),
                  plan_cost(p))
    text = out.getvalue()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= width and "…" not in text
    assert "backbone_s32" in text and "32,602,769" in text
