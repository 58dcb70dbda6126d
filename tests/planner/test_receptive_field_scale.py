"""Receptive fields: against an oracle written from the layers alone, against every path traced
apart, and with work that grows with the layers, not with the paths, heads or grid residues."""

from __future__ import annotations

import pytest

from archgen.planner import cost, make_plan
from archgen.planner.cost import _span_maps, receptive_fields
from archgen.config import load_spec
from tests.conftest import CONF

OPEN_2D = "input.shape=[null,null,1]"
SMALL = ("encoder.filters=2", "encoder.multiplier=1")


def seed_unet_field(depth: int) -> int:
    """The seed U-Net's field, from its layers: two 3x3 unpadded convs per level, 2x2 max pools,
    2x2 stride-2 up-convs (output u reads input u // 2), skips centre-cropped to the up-sampled
    size, a 1x1 head. Worst over the output positions of one pooling grid period."""
    convs = 2 * (3 - 1)  # how far two 3x3 convs widen a span
    encoder_sizes = [2]  # level outputs, from a bottleneck of 2 (any legal size gives the same crops)
    for _ in range(depth):
        encoder_sizes.insert(0, 2 * (encoder_sizes[0] + convs))
    crops, size = {}, encoder_sizes[depth]
    for level in reversed(range(depth)):
        crops[level] = (encoder_sizes[level] - 2 * size) // 2
        size = 2 * size - convs

    def encoder(level: int, lo: int, hi: int) -> tuple[int, int]:
        hi += convs
        return (lo, hi) if level == 0 else encoder(level - 1, 2 * lo, 2 * hi + 1)

    def decoder(level: int, lo: int, hi: int) -> tuple[int, int]:
        if level == depth:
            return encoder(depth, lo, hi)
        hi += convs
        skip = encoder(level, lo + crops[level], hi + crops[level])
        deep = decoder(level + 1, lo // 2, hi // 2)
        return min(skip[0], deep[0]), max(skip[1], deep[1])

    return max(hi - lo + 1 for lo, hi in (decoder(0, c, c) for c in range(2 ** (depth + 1))))


def test_seed_unet_field_is_the_hand_calculation():
    assert seed_unet_field(4) == 204  # as the summary prints for conf/unet.yaml
    assert receptive_fields(make_plan(load_spec(CONF / "unet.yaml"))) == (204, 204)


@pytest.mark.parametrize("depth", [1, 2, 3, 6, 12])
def test_seed_unet_field_at_every_depth(depth):
    plan = make_plan(load_spec(CONF / "unet.yaml", [f"encoder.depth={depth}", OPEN_2D, *SMALL]))
    assert receptive_fields(plan) == (seed_unet_field(depth),) * 2


def every_path_fields(plan) -> tuple[int, ...]:
    """Per axis, each head position's span traced back along every path on its own (no sharing,
    exponential in a nested topology's depth) and hulled at the input; the worst over the grid."""
    layers = {layer.name: layer for layer in plan.layers}
    fields = []
    for axis in range(plan.ndim):
        rule = plan.axis_sizes[axis] if plan.axis_sizes else plan.sizes
        period = rule.period if rule else 1

        def spans(name: str, lo: int, hi: int):
            layer = layers[name]
            if layer.kind == "input":
                yield lo, hi
            for src in layer.inputs:
                first, last, _ = _span_maps(layer, layers[src].shape[axis], axis)
                yield from spans(src, first(lo), last(hi))

        widest = 0
        for head in plan.outputs.values():
            for c in range(period):
                ends = list(spans(head, c, c))
                if ends:
                    widest = max(widest, max(hi for _, hi in ends) - min(lo for lo, _ in ends) + 1)
        fields.append(widest)
    return tuple(fields)


TRANSFORMER = ("encoder.transformer.layers=1", "encoder.transformer.embed_dim=4", "encoder.transformer.heads=1")


@pytest.mark.parametrize("config, overrides", [
    ("unet_plus_plus.yaml", ["encoder.depth=3", OPEN_2D, *SMALL]),
    ("unet_plus_plus.yaml", ["encoder.depth=3", OPEN_2D, "padding=same", *SMALL]),
    ("unet3plus.yaml", ["encoder.depth=3", OPEN_2D, *SMALL]),
    ("unet3plus.yaml", ["encoder.depth=2", "padding=valid", "input.shape=[124,124,1]", *SMALL]),
    ("unet3plus.yaml", ["encoder.depth=3", "input.shape=[64,64,1]", "decoder.upsample.type=resize",
                        "decoder.upsample.interpolation=nearest", *SMALL]),
    # attention at a known size reads all of its input: a constant beside the skips' positions
    ("unet_plus_plus.yaml", ["encoder.depth=2", "input.shape=[108,108,1]", *TRANSFORMER, *SMALL]),
    # a resize's float scale: tables of just the positions wanted
    ("unet.yaml", ["encoder.depth=2", "input.shape=[92,92,1]", "decoder.align=resize", *SMALL]),
    ("peers/monai_dynunet_3d_anisotropic.yaml", []),
    ("peers/smp_unet_resnet50.yaml", []),
])
def test_fields_equal_every_path_traced_apart(config, overrides):
    plan = make_plan(load_spec(CONF / config, overrides))
    assert receptive_fields(plan) == every_path_fields(plan)


@pytest.mark.parametrize("config, overrides, field", [
    # the fields the every-path trace gives (it takes over a minute on these)
    ("unet_plus_plus.yaml", ["padding=valid"], 53244),
    ("unet3plus.yaml", ["padding=same"], 69628),
])
def test_depth_12_topologies_read_each_layer_once(monkeypatch, config, overrides, field):
    """UNet++ (12 deep-supervision heads, crops to every earlier node) and UNet 3+ (13 heads,
    full-scale skips) at depth 12: 4096 grid residues per head and exponentially many paths, but
    each layer's spans are traced once per input it reads."""
    plan = make_plan(load_spec(CONF / config, ["encoder.depth=12", OPEN_2D, *SMALL, *overrides]))
    edges = sum(len(set(layer.inputs)) for layer in plan.layers)
    budget = edges * plan.ndim
    reads = 0
    span_maps = cost._span_maps

    def counted(layer, in_size, axis=0):
        nonlocal reads
        reads += 1
        assert reads <= budget, "a layer's spans were traced more than once per input"
        return span_maps(layer, in_size, axis)

    monkeypatch.setattr(cost, "_span_maps", counted)
    assert receptive_fields(plan) == (field, field)
    assert len(plan.outputs) >= 12 and plan.sizes.period == 4096
