"""The U-shaped SVG and the DOT graph: structure, labels, geometry, no heavy imports."""

from __future__ import annotations

import ast
import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archgen.planner import make_plan
from archgen.report import diagram
from archgen.report.diagram import plan_to_dot, plan_to_svg
from archgen.config import load_spec

CONF = Path(__file__).resolve().parents[2] / "conf"
SVG = "{http://www.w3.org/2000/svg}"


def plan_of(name: str, *overrides: str):
    return make_plan(load_spec(CONF / f"{name}.yaml", list(overrides)))


def parse(plan) -> ET.Element:
    return ET.fromstring(plan_to_svg(plan))


def groups(root: ET.Element, cls: str) -> list[ET.Element]:
    return [g for g in root.iter(SVG + "g") if g.get("class") == cls]


def text_of(g: ET.Element) -> str:
    """The visible label of a group (its <text>, not the <title> tooltip)."""
    texts = [t.text or "" for t in g.findall(SVG + "text")]
    return texts[0] if texts else ""


def shape_text(shape) -> str:
    return "x".join("?" if s is None else str(s) for s in shape)


@pytest.fixture(scope="module")
def unet():
    return plan_of("unet")


def test_unet_levels_form_a_u(unet):
    root = parse(unet)
    assert root.tag == SVG + "svg" and root.get("viewBox")
    ids = [g.get("id") for g in groups(root, "level")]
    assert ids == ["enc1", "enc2", "enc3", "enc4", "bottleneck", "dec4", "dec3", "dec2", "dec1"]
    assert len(ids) == 2 * unet.depth + 1
    labels = {g.get("id"): text_of(g) for g in groups(root, "level")}
    assert labels["enc1"] == "enc1 568x568x64"
    assert labels["bottleneck"] == "bottleneck 28x28x1024"
    assert labels["dec1"] == "dec1 388x388x64"
    rects = {g.get("id"): g.find(SVG + "rect") for g in groups(root, "level")}
    # Encoder on the left going down, decoder on the right going up, the bottleneck lowest.
    x = {k: float(r.get("x")) for k, r in rects.items()}
    y = {k: float(r.get("y")) for k, r in rects.items()}
    assert x["enc1"] < x["enc4"] < x["bottleneck"] < x["dec4"] < x["dec1"]
    assert y["enc1"] < y["enc2"] < y["bottleneck"] and y["dec1"] < y["dec2"] < y["bottleneck"]
    # Height follows the spatial size, width the channels.
    assert float(rects["enc1"].get("height")) > float(rects["enc2"].get("height"))
    assert float(rects["bottleneck"].get("width")) > float(rects["enc1"].get("width"))


def test_unet_skips_carry_the_crops(unet):
    root = parse(unet)
    skips = {(g.get("data-from"), g.get("data-to")): text_of(g) for g in groups(root, "skip")}
    assert skips == {("enc1", "dec1"): "crop 88+88", ("enc2", "dec2"): "crop 40+40",
                     ("enc3", "dec3"): "crop 16+16", ("enc4", "dec4"): "crop 4+4"}
    assert len(groups(root, "down")) == len(groups(root, "up")) == unet.depth
    assert len(groups(root, "legend")) == 1


def test_unet_head(unet):
    root = parse(unet)
    assert [g.get("id") for g in groups(root, "head")] == ["head_logits"]
    assert text_of(groups(root, "head")[0]) == "logits 388x388x2"
    links = [(g.get("data-from"), g.get("data-to")) for g in groups(root, "to-head")]
    assert links == [("dec1", "head_logits")]


def test_a_head_named_like_a_level_keeps_the_svg_ids_unique():
    # A head's layer takes the head's name; "dec1" is no layer's name but is the id of a level's box.
    root = parse(plan_of("unet", "heads.0.name=dec1"))
    ids = [g.get("id") for g in root.iter(SVG + "g") if g.get("id")]
    assert len(ids) == len(set(ids)) and "dec1" in ids and "head_dec1" in ids
    assert text_of(groups(root, "head")[0]) == "dec1 388x388x2"


def test_encoder_decoder_has_no_skips():
    plan = plan_of("encoder_decoder")
    root = parse(plan)
    assert len(groups(root, "level")) == 2 * plan.depth + 1
    assert groups(root, "skip") == []
    assert len(groups(root, "down")) == len(groups(root, "up")) == plan.depth


def test_deep_supervision_heads_read_deeper_levels():
    root = parse(plan_of("deep_supervision"))
    links = {g.get("data-to"): g.get("data-from") for g in groups(root, "to-head") + groups(root, "to-deep-head")}
    assert links == {"head_logits": "dec1", "head_logits_dec2": "dec2", "head_logits_dec3": "dec3"}
    assert {g.get("id") for g in groups(root, "head")} == set(links)


@pytest.mark.parametrize("overrides, label", [
    (("decoder.align=resize",), "resize"),
    (("input.shape=[576,576,1]", "padding=same", "decoder.align=pad"), ""),  # nothing to pad
    (("input.shape=[576,576,1]", "padding=same", "decoder.align=none"), ""),
])
def test_skip_label_names_the_alignment(overrides, label):
    root = parse(plan_of("unet", *overrides))
    skips = groups(root, "skip")
    assert len(skips) == 4
    assert {text_of(g) for g in skips} == {label}


@pytest.mark.parametrize("overrides", [("input.shape=[188,1]",), ("input.shape=[64,64,64,1]", "padding=same")])
def test_1d_and_3d_render(overrides):
    plan = plan_of("unet", *overrides)
    root = parse(plan)
    labels = {g.get("id"): text_of(g) for g in groups(root, "level")}
    assert len(labels) == 2 * plan.depth + 1
    assert labels["enc1"] == f"enc1 {shape_text(plan.layer('enc1_conv2').shape)}"
    assert len(groups(root, "skip")) == 4


def test_dynamic_sizes_render():
    root = parse(plan_of("unet", "input.shape=[null,null,1]"))
    labels = {g.get("id"): text_of(g) for g in groups(root, "level")}
    assert labels["enc1"] == "enc1 ?x?x64"
    assert text_of(groups(root, "skip")[0]) == "crop 88+88"


CASES = [("unet",), ("encoder_decoder",), ("deep_supervision",), ("instance",), ("unet_bn_residual",),
         ("unet", "input.shape=[188,1]"), ("unet", "input.shape=[null,null,1]")]


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_everything_lies_inside_the_view_box(case):
    assert_inside_view_box(parse(plan_of(*case)))


def assert_inside_view_box(root) -> None:
    """Every box (of positive size), line point and label anchor lies inside the SVG's viewBox."""
    x0, y0, width, height = map(float, root.get("viewBox").split())
    assert (x0, y0) == (0, 0)
    points: list[tuple[float, float]] = []
    for rect in root.iter(SVG + "rect"):
        if rect.get("x") is not None:  # the background rect is 100% x 100%
            x, y, w, h = (float(rect.get(k)) for k in ("x", "y", "width", "height"))
            assert w > 0 and h > 0
            points += [(x, y), (x + w, y + h)]
    for line in root.iter(SVG + "polyline"):
        points += [tuple(map(float, p.split(","))) for p in line.get("points").split()]
    for text in root.iter(SVG + "text"):
        points.append((float(text.get("x")), float(text.get("y"))))
    assert points and all(0 <= x <= width and 0 <= y <= height for x, y in points)


def test_text_is_escaped(unet):
    svg = plan_to_svg(dataclasses.replace(unet, name='a<b & "c"'))
    root = ET.fromstring(svg)
    title = [t for t in root.iter(SVG + "text") if t.get("class") == "title"][0]
    assert title.text.startswith('a<b & "c": input 572x572x1')


def test_dot_lists_every_layer_and_edge(unet):
    dot = plan_to_dot(unet)
    assert dot.startswith('digraph "unet" {') and dot.rstrip().endswith("}")
    assert dot.count("{") == dot.count("}")
    for layer in unet.layers:
        assert f'"{layer.name}" [label="{layer.name}\\n{layer.kind} {shape_text(layer.shape)}"]' in dot
        for source in layer.inputs:
            assert f'"{source}" -> "{layer.name}";' in dot
    clusters = re.findall(r'subgraph "cluster_(\w+)"', dot)
    assert clusters == list(dict.fromkeys(layer.group for layer in unet.layers))


def test_diagram_needs_only_the_standard_library():
    tree = ast.parse(Path(diagram.__file__).read_text(encoding="utf-8"))
    modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    modules |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {m.split(".")[0] for m in modules} <= {"__future__", "math", "re", "typing", "xml", "archgen"}


def legend_text(root: ET.Element) -> str:
    (legend,) = groups(root, "legend")
    return " ".join(t.text or "" for t in legend.iter(SVG + "text"))


def test_attention_gates_show_on_their_skips():
    root = parse(plan_of("attention_unet"))
    gated = groups(root, "gated-skip")
    assert len(gated) == 4 and not groups(root, "skip")
    assert all(text_of(g).endswith("gated") for g in gated)
    assert "attention gate" in legend_text(root)
    assert "attention gate" not in legend_text(parse(plan_of("unet")))


def test_residual_shortcuts_are_drawn_on_their_levels_only():
    root = parse(plan_of("unet_bn_residual"))
    looped = {g.get("data-from") for g in groups(root, "residual")}
    assert looped == {g.get("id") for g in groups(root, "level")}  # every level has a residual block
    assert all(g.get("data-from") == g.get("data-to") for g in groups(root, "residual"))
    assert "residual shortcut" in legend_text(root)
    plain = parse(plan_of("unet"))
    assert not groups(plain, "residual") and "residual" not in legend_text(plain)
    add_merge = parse(plan_of("unet_same", "decoder.merge.type=add"))  # a skip added is not a shortcut
    assert not groups(add_merge, "residual")


def test_deep_supervision_outputs_are_told_apart():
    root = parse(plan_of("deep_supervision"))
    assert len(groups(root, "to-deep-head")) == 2 and len(groups(root, "to-head")) == 1
    assert "deep-supervision output" in legend_text(root)


def test_the_legend_lists_only_what_the_picture_has():
    root = parse(plan_of("encoder_decoder"))
    assert not groups(root, "skip") and "skip" not in legend_text(root)
    same = parse(plan_of("unet_same"))
    assert all(text_of(g) == "" for g in groups(same, "skip"))  # nothing to crop: no "crop 0+0"


def test_png_is_the_svg_rendered(cli, tmp_path):
    pytest.importorskip("cairosvg", reason="pip install 'archgen[png]'")
    target = tmp_path / "unet.png"
    code, out, err = cli("diagram", CONF / "attention_unet.yaml", "--format", "png", "-o", target)
    assert code == 0, err
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    root = parse(plan_of("attention_unet"))
    assert (width, height) == (int(root.get("width")), int(root.get("height")))
    code, _, err = cli("diagram", CONF / "unet.yaml", "--format", "png", "-o", "-")
    assert code == 2 and "not written to a terminal" in err
