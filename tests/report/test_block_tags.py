"""Reports name the new blocks: diagram tags (R2, SE, ViT) and the summary's notes."""

from __future__ import annotations

from pathlib import Path

from archgen.planner import make_plan
from archgen.report.diagram import plan_to_svg
from archgen.report.summary import _note
from archgen.spec import load_spec

PEERS = Path(__file__).resolve().parents[2] / "conf" / "peers"


def test_diagram_tags_recurrent_levels_and_the_transformer():
    r2 = plan_to_svg(make_plan(load_spec(PEERS / "kuc_r2_unet_2d.yaml")))
    assert ">enc1 128x128x64 R2<" in r2 and ">dec1 128x128x64 R2<" in r2
    vit = plan_to_svg(make_plan(load_spec(PEERS / "kuc_transunet_2d.yaml", ["encoder.block.se={ratio: 8}"])))
    assert ">bottleneck 16x16x512 SE ViTx4<" in vit and ">enc1 128x128x64 SE<" in vit


def test_summary_notes_the_new_layer_kinds():
    plan = make_plan(load_spec(PEERS / "kuc_transunet_2d.yaml", ["encoder.block.se={ratio: 8}"]))
    assert _note(plan.layer("bottleneck_vit1_attn")) == "4 heads, key 256"
    assert _note(plan.layer("bottleneck_vit1_mlp1")) == "1024 units"
    assert _note(plan.layer("enc1_se_scale")) == "x SE gate"
    assert _note(plan.layer("bottleneck_vit_pos")) == "learned"
