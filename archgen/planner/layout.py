"""Spec -> graph of ``Node``, in build order: the encoder and bottleneck laid out here, then the
decoder and heads by the module for the decoder's topology (``graph`` for a U-Net, ``topology`` for
UNet++ and UNet 3+); a keras.applications encoder is laid out by ``backbone``."""

from __future__ import annotations

from archgen.planner.blocks.transformer import plan_transformer
from archgen.planner.graph import Graph, plan_decoder, plan_downsample, plan_heads, plan_stage, plan_stem
from archgen.spec.model import ArchSpec, StrideFirstConv
from archgen.spec.resolve import resolve


def build_graph(spec: ArchSpec) -> Graph:
    """Lay out every layer of ``spec`` in build order (encoder, bottleneck, decoder, heads).

    Reads only the canonical form (``resolve``): the encoder's and decoder's stages.
    """
    r = resolve(spec)
    if r.encoder.type == "backbone":
        from archgen.planner.backbone import build_backbone_graph  # loaded for a backbone only

        return build_backbone_graph(r)
    g = Graph(r.ndim)
    stages = r.encoder.stages
    depth = len(stages) - 1
    down = r.encoder.downsample
    x = g.add("input", "input", (), r.input.shape[-1], group="input", path="input")
    skips: dict[int, str] = {}
    for i, stage in enumerate(stages):
        level = i + 1
        prefix = "bottleneck" if i == depth else f"enc{level}"
        stride = tuple(stage.stride)
        if i > 0 and not isinstance(down, StrideFirstConv):
            x = plan_downsample(g, r, x, i, stride)
            stride = (1,) * r.ndim
        if i == depth:
            g.bottleneck_in = x
        if i == 0 and r.encoder.stem is not None:
            x = plan_stem(g, r, x)
        x = plan_stage(g, r, x, prefix, stage.filters, stage.convs, stage.blocks, tuple(stage.kernel_size), stride,
                       decoder=False, path=f"encoder.stages[{i}]")
        if i == depth and isinstance(down, StrideFirstConv):
            g.bottleneck_in = _first_conv(g, prefix)
        if i == depth and r.encoder.transformer is not None:
            x = plan_transformer(g, r.encoder.transformer, x)
        skips[level] = x
    if r.decoder.type != "unet":  # nested or full-scale skips: their own module
        from archgen.planner.topology import plan_topology  # loaded for these decoders only

        return plan_topology(g, r, skips)
    features = plan_decoder(g, r, x, skips, [tuple(stage.stride) for stage in stages])
    g.outputs = plan_heads(g, r, features)
    g.prune()
    return g


def _first_conv(g: Graph, prefix: str) -> str:
    return next(n for n in g.nodes if n.startswith(prefix + "_") and g.nodes[n].kind == "conv")
