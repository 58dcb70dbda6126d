"""The SVG of UNet++ (its grid of nested nodes) and UNet 3+ (full-scale arrows): every node drawn,
every connection drawn once, nothing overlapping, the legend naming only what is drawn."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from archgen.planner import make_plan
from archgen.report.diagram import plan_to_svg
from archgen.config import load_spec
from tests.conftest import CONF
from tests.report.test_diagram import CASES, assert_inside_view_box, groups, legend_text, parse, text_of

PEERS = CONF / "peers"
SVG = "{http://www.w3.org/2000/svg}"


def plan_of(name: str, *overrides: str):
    return make_plan(load_spec(PEERS / f"{name}.yaml", list(overrides)))


def boxes(root: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    out = {}
    for g in groups(root, "level") + groups(root, "head"):
        rect = g.find(SVG + "rect")
        out[g.get("id")] = tuple(float(rect.get(k)) for k in ("x", "y", "width", "height"))
    return out


def no_overlap(found: dict) -> None:
    items = list(found.items())
    for n, (a, (ax, ay, aw, ah)) in enumerate(items):
        for b, (bx, by, bw, bh) in items[n + 1:]:
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (a, b)


def edges(root: ET.Element, kind: str) -> set[tuple[str, str]]:
    return {(g.get("data-from"), g.get("data-to")) for g in groups(root, kind)}


@pytest.mark.parametrize("overrides", [[], ["padding=valid", "input.shape=[140,140,3]"],
                                       ["decoder.deep_supervision=true", "encoder.depth=4"]])
def test_unet_plus_draws_every_nested_node_and_connection(overrides):
    plan = plan_of("kuc_unet_plus_2d", *overrides)
    depth = plan.depth
    root = parse(plan)
    found = boxes(root)
    nested = {f"x{i}_{j}" for j in range(1, depth + 1) for i in range(depth - j + 1)}
    column0 = {f"enc{i}" for i in range(1, depth + 1)} | {"bottleneck"}
    assert set(found) == nested | column0 | {f"head_{name}" for name in plan.outputs}
    no_overlap(found)
    # Up from the node below-left; the row's previous node beside it; the earlier ones on a bus.
    cell = lambda i, j: f"x{i}_{j}" if j else (f"enc{i + 1}" if i < depth else "bottleneck")
    pairs = [(i, j) for j in range(1, depth + 1) for i in range(depth - j + 1)]
    assert edges(root, "up") == {(cell(i + 1, j - 1), cell(i, j)) for i, j in pairs}
    assert edges(root, "skip") == {(cell(i, j - 1), cell(i, j)) for i, j in pairs}
    assert edges(root, "dense-skip") == {(cell(i, k), cell(i, j)) for i, j in pairs for k in range(j - 1)}
    assert edges(root, "down") == {(cell(i, 0), cell(i + 1, 0)) for i in range(depth)}
    deep = [name for name in plan.outputs if name != "logits"]
    assert {b for _, b in edges(root, "to-deep-head")} == {f"head_{name}" for name in deep}
    assert ("deep-supervision output" in legend_text(root)) == bool(deep)
    for g in groups(root, "level"):  # each node's label names it and its shape
        assert text_of(g).split()[0] == g.get("id")


def test_unet_plus_valid_padding_labels_the_crops():
    root = parse(plan_of("kuc_unet_plus_2d", "padding=valid", "input.shape=[140,140,3]"))
    labels = {(g.get("data-from"), g.get("data-to")): text_of(g) for g in groups(root, "skip")}
    assert labels[("enc1", "x0_1")] == "crop 4+4"
    assert labels[("x0_2", "x0_3")] == "crop 22+22"
    same = parse(plan_of("kuc_unet_plus_2d"))
    assert all(text_of(g) == "" for g in groups(same, "skip"))


def test_unet_plus_of_depth_one_has_no_dense_skips():
    root = parse(plan_of("kuc_unet_plus_2d", "encoder.depth=1"))
    assert not groups(root, "dense-skip") and "dense skip" not in legend_text(root)


def test_unet_3plus_draws_full_scale_arrows():
    plan = plan_of("kuc_unet_3plus_2d")
    root = parse(plan)
    no_overlap(boxes(root))
    # Skips 2..4: each decoder level L pools the finer skip levels 2..L-1 ...
    assert edges(root, "full-scale-down") == {(f"enc{j}", f"dec{L}") for L in range(1, 5) for j in range(2, L)}
    # ... and resizes every level deeper than the one just below it.
    deeper = lambda L: ["bottleneck"] + [f"dec{k}" for k in range(L + 2, 5)]
    assert edges(root, "full-scale-up") == {(s, f"dec{L}") for L in range(1, 4) for s in deeper(L)}
    assert ("enc1", "dec1") not in edges(root, "skip")  # encoder level 1 sends nothing here
    text = legend_text(root)
    assert "max-pooled (UNet 3+)" in text and "resized up (UNet 3+)" in text and "UNet++" not in text


def test_unet_3plus_deep_heads_and_crops():
    plan = plan_of("kuc_unet_3plus_2d", "decoder.deep_supervision=true", "padding=valid", "input.shape=[204,204,3]")
    root = parse(plan)
    found = boxes(root)
    assert {n for n in found if n.startswith("head_")} == {f"head_{name}" for name in plan.outputs}  # no inner layers
    no_overlap(found)
    assert {b for _, b in edges(root, "to-deep-head")} == {f"head_logits_dec{k}" for k in range(2, 6)}
    labels = {(g.get("data-from"), g.get("data-to")): text_of(g) for g in groups(root, "skip")}
    crop = plan.layer("dec2_crop_enc2").attrs["cropping"][0]
    assert labels[("enc2", "dec2")] == f"crop {crop[0]}+{crop[1]}"


def test_plain_unet_legend_has_no_topology_arrows():
    from tests.report.test_diagram import plan_of as conf_plan

    text = legend_text(parse(conf_plan("unet")))
    assert "UNet 3+" not in text and "UNet++" not in text


@pytest.mark.parametrize("overrides", [[], ["decoder.deep_supervision=true"],
                                       ["padding=valid", "input.shape=[204,204,3]", "decoder.deep_supervision=true"]])
@pytest.mark.parametrize("name", ["kuc_unet_plus_2d", "kuc_unet_3plus_2d"])
def test_everything_lies_inside_the_view_box(name, overrides):
    assert_inside_view_box(ET.fromstring(plan_to_svg(plan_of(name, *overrides))))
    assert CASES  # the U-shaped cases are checked in test_diagram.py
