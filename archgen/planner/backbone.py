"""Spec with a keras.applications encoder -> graph of ``Node``: the backbone, its taps, the decoder.

The backbone is one node (``backbone``, group ``backbone``: the whole application, its parameters
and FLOPs from the table); each tap it hands the decoder is a node of its own (``backbone_s4``: the
stage output at stride 4, in the group of the encoder level it feeds, ``enc3``; the stride-32 one
is the ``bottleneck``), whose size is the backbone node's (input / 32, the size entering the
bottleneck) times 32 / stride. The decoder and heads are planned as for any other encoder.
"""

from __future__ import annotations

from archgen.backbones import BACKBONES, Backbone
from archgen.errors import PlanError
from archgen.planner.graph import Graph, plan_block, plan_decoder, plan_heads
from archgen.config.model import ArchSpec, ConvBlock


def tap_level(stride: int) -> int:
    """The decoder level a tap at ``stride`` joins: stride 1 is level 1 (full resolution)."""
    return stride.bit_length()


def check_backbone_input(spec: ArchSpec, backbone: Backbone) -> None:
    """A backbone reads 2D images of 3 channels (an adapter makes them from others)."""
    shape = spec.input.shape
    if spec.ndim != 2:
        raise PlanError(f"a keras.applications backbone reads 2D images: give input.shape as [H, W, C], not "
                        f"{len(shape) - 1} spatial axes", path="input.shape", value=list(shape))
    channels = shape[-1]
    if channels != 3 and not spec.encoder.adapter:
        raise PlanError(f"{spec.encoder.name} reads 3-channel images (its stem, and pretrained weights, are for RGB); "
                        f"the input has {channels}. Set encoder.adapter: true to learn a 1x1 conv from {channels} "
                        f"to 3 channels first, or give input.shape [..., 3] (a grey channel repeated three times)",
                        path="input.shape", value=list(shape))
    trainable = spec.encoder.trainable
    if not isinstance(trainable, bool) and trainable > len(backbone.taps):
        raise PlanError(f"{spec.encoder.name} has {len(backbone.taps)} stages (one per tap: strides "
                        f"{', '.join(str(t.stride) for t in backbone.taps)}); give at most {len(backbone.taps)}, "
                        f"or true for all", path="encoder.trainable", value=trainable)


def check_backbone_decoder(spec: ArchSpec) -> None:
    """A backbone feeds the U-Net decoder, which up-samples before it joins each tap: the nested and
    full-scale topologies read the encoder's own stages and down-sampling, which a backbone has not."""
    dec = spec.decoder
    if dec.type != "unet":
        raise PlanError(f"a keras.applications backbone feeds decoder.type unet only: {dec.type} re-reads the "
                        f"encoder's stages and down-sampling, which the backbone's taps do not have; use "
                        f"decoder.type unet (or encoder.type unet for {dec.type})", path="decoder.type",
                        value=dec.type)
    if dec.merge_at != "after_upsample":
        raise PlanError("a backbone's stride-32 output is half the size of its stride-16 tap, so it cannot join "
                        "that tap before up-sampling; use merge_at: after_upsample", path="decoder.merge_at",
                        value=dec.merge_at)


def trainable_stages(spec: ArchSpec, backbone: Backbone) -> int:
    """How many of the backbone's last stages learn."""
    trainable = spec.encoder.trainable
    if isinstance(trainable, bool):
        return len(backbone.taps) if trainable else 0
    return trainable


def plan_center(g: Graph, r: ArchSpec, x: str) -> str:
    """Convs on the stride-32 output (``bottleneck_conv1``, ...) with the decoder block's norm and
    activation, norm then activation after each conv (segmentation_models' centre block on a VGG)."""
    center, block = r.encoder.center, r.decoder.block
    kept = set(ConvBlock.model_fields) & set(type(block).model_fields) - {"type", "se", "inner_ratio"}
    plain = ConvBlock.model_validate(block.model_dump(include=kept))
    if plain.order == "pre_activation":
        plain = plain.model_copy(update={"order": "norm_act"})
    return plan_block(g, r, x, "bottleneck", center.filters, center.convs, tuple(center.kernel_size), (1,) * r.ndim,
                      decoder=True, group="bottleneck", stage_path="encoder.center", block=plain)


def build_backbone_graph(r: ArchSpec) -> Graph:
    """Lay out input, backbone, taps, decoder and heads of a resolved spec whose encoder is a backbone."""
    backbone = BACKBONES[r.encoder.name]
    check_backbone_input(r, backbone)
    check_backbone_decoder(r)
    g = Graph(r.ndim)
    x = g.add("input", "input", (), r.input.shape[-1], group="input", path="input")
    if r.encoder.adapter:
        x = g.conv("backbone_adapter", x, 3, kernel=1, group="backbone", path="encoder.adapter")
    body = g.add("backbone", "backbone", (x,), backbone.taps[-1].channels, group="backbone", path="encoder",
                 params=backbone.params, backbone=r.encoder.name, constructor=backbone.constructor,
                 factor=backbone.divisor, min_size=backbone.min_size, weights=r.encoder.weights,
                 trainable_stages=trainable_stages(r, backbone),
                 taps=tuple((t.layer, t.side) for t in backbone.taps),
                 flops_per_tile=backbone.flops_per_tile, flops_constant=backbone.flops_constant)
    g.bottleneck_in = body
    skips: dict[int, str] = {}
    for index, tap in enumerate(backbone.taps):
        level = tap_level(tap.stride)
        # The tap belongs to the encoder level it feeds, as a U-Net's level output does: the summary
        # and diagram then read it as that level (the stride-32 output is the bottleneck).
        group = "bottleneck" if tap is backbone.taps[-1] else f"enc{level}"
        skips[level] = g.add(
            f"backbone_s{tap.stride}", "tap", (body,), tap.channels, group=group, path="encoder",
            index=index, layer=tap.layer, side=tap.side, stride=tap.stride, factor=backbone.divisor // tap.stride)
    depth = backbone.depth
    x = skips.pop(depth + 1)
    if r.encoder.center is not None:
        x = plan_center(g, r, x)
    features = plan_decoder(g, r, x, skips, [(1,) * r.ndim] + [(2,) * r.ndim] * depth)  # taps 2x apart
    g.outputs = plan_heads(g, r, features)
    g.prune()
    return g
