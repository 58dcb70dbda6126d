"""Reports name the new blocks: diagram tags (norms, R2, SE, ViT) and the summary's notes."""

from __future__ import annotations

from pathlib import Path

import pytest

from archgen.planner import make_plan
from archgen.report.diagram import plan_to_svg
from archgen.report.summary import _note
from archgen.config import load_spec

CONF = Path(__file__).resolve().parents[2] / "conf"
PEERS = CONF / "peers"


def test_diagram_tags_recurrent_levels_and_the_transformer():
    r2 = plan_to_svg(make_plan(load_spec(PEERS / "kuc_r2_unet_2d.yaml")))
    assert ">enc1 128x128x64 BN R2<" in r2 and ">dec1 128x128x64 BN R2<" in r2
    vit = plan_to_svg(make_plan(load_spec(PEERS / "kuc_transunet_2d.yaml", ["encoder.block.se={ratio: 8}"])))
    # the transformer's layer norms are its own: no LN tag
    assert ">bottleneck 16x16x512 BN SE ViTx4<" in vit and ">enc1 128x128x64 BN SE<" in vit
    assert ">tags: BN batch norm, SE squeeze-and-excitation, ViTxN N transformer layers<" in vit


@pytest.mark.parametrize("overrides, enc1, legend", [
    ([], ">enc1 64x64x8<", None),
    (["encoder.block.norm=batch"], ">enc1 64x64x8 BN<", "BN batch norm"),
    (["encoder.block.norm=instance"], ">enc1 64x64x8 IN<", "IN instance norm"),
    (["encoder.block.norm=group", "encoder.block.groups=4"], ">enc1 64x64x8 GN<", "GN group norm"),
    (["encoder.block.norm=layer"], ">enc1 64x64x8 LN<", "LN layer norm"),
    (["decoder.block.norm=batch", "decoder.merge.type=attention", "decoder.merge.norm=instance"],
     ">enc1 64x64x8<", "BN batch norm"),  # the gate's norm is the gate's: dec levels say BN only
])
def test_diagram_tags_the_norm_of_a_levels_convs_and_says_what_tags_mean(overrides, enc1, legend):
    base = ["input.shape=[64,64,1]", "padding=same", "encoder.depth=2", "encoder.filters=8"]
    svg = plan_to_svg(make_plan(load_spec(CONF / "unet.yaml", base + overrides)))
    assert enc1 in svg
    if legend is None:
        assert 'class="tags"' not in svg
    else:
        assert f">tags: {legend}<" in svg


def test_summary_notes_the_new_layer_kinds():
    plan = make_plan(load_spec(PEERS / "kuc_transunet_2d.yaml", ["encoder.block.se={ratio: 8}"]))
    assert _note(plan.layer("bottleneck_vit1_attn")) == "4 heads, key 256"
    assert _note(plan.layer("bottleneck_vit1_mlp1")) == "1024 units"
    assert _note(plan.layer("enc1_se_scale")) == "x SE gate"
    assert _note(plan.layer("bottleneck_vit_pos")) == "learned"
