"""Spec -> graph of ``Node``, in build order: the encoder and bottleneck laid out here, then the
decoder and heads by the module for the decoder's topology (``graph`` for a U-Net, ``topology`` for
UNet++ and UNet 3+); a keras.applications encoder is laid out by ``backbone``, a
transformer on the input by ``vit`` or ``swin``."""

from __future__ import annotations

from archgen.planner.blocks.transformer import plan_transformer
from archgen.planner.graph import (Graph, axes_of, hands_on_activated, plan_decoder, plan_downsample, plan_heads,
                                 plan_input_norm, plan_stage, plan_stem, plan_stem_pool, stem_strides)
from archgen.config.model import ArchSpec, StrideFirstConv
from archgen.config.resolve import resolve
from archgen.errors import PlanError


def build_graph(spec: ArchSpec) -> Graph:
    """Lay out every layer of ``spec`` in build order (encoder, bottleneck, decoder, heads).

    Reads only the canonical form (``resolve``): the encoder's and decoder's stages.
    """
    r = resolve(spec)
    if r.encoder.type == "backbone":
        from archgen.planner.backbone import build_backbone_graph  # loaded for a backbone only

        return build_backbone_graph(r)
    if r.encoder.type == "vit":
        from archgen.planner.vit import build_vit_graph  # loaded for a vit encoder only

        return build_vit_graph(r)
    if r.encoder.type == "swin":
        from archgen.planner.swin import build_swin_graph  # loaded for a swin encoder only

        return build_swin_graph(r)
    g = Graph(r.ndim)
    stages = r.encoder.stages
    depth = len(stages) - 1
    down = r.encoder.downsample
    ones = (1,) * r.ndim
    x = g.add("input", "input", (), r.input.shape[-1], group="input", path="input")
    skips: dict[int, str] = {}
    # Strides into each level, level 1 first; a stem that strides makes levels 1 and 2 of its own.
    strides = [tuple(stage.stride) for stage in stages]
    offset = 0
    if stem_strides(r):
        offset = 2
        skips[1] = x = plan_input_norm(g, r, x)
        skips[2] = x = plan_stem(g, r, x)
        x = plan_stem_pool(g, r, x)
        pool = r.encoder.stem.pool.factor if r.encoder.stem.pool is not None else 1
        strides = [ones, tuple(r.encoder.stem.stride), tuple(s * pool for s in strides[0]), *strides[1:]]
    for i, stage in enumerate(stages):
        level = i + 1 + offset
        prefix = "bottleneck" if i == depth else f"enc{level}"
        stride = tuple(stage.stride)
        if (i > 0 or (offset and any(s > 1 for s in stride))) and not isinstance(down, StrideFirstConv):
            x = plan_downsample(g, r, x, level - 1, stride)
            stride = ones
        if i == depth:
            g.bottleneck_in = x
        if i == 0 and r.encoder.stem is not None and not offset:
            x = plan_stem(g, r, plan_input_norm(g, r, x))
        # The first block reads a stage output already normalised and activated, where the stage before hands
        # on one (the stem never does).
        activated = i > 0 and hands_on_activated(r.encoder.block)
        x = plan_stage(g, r, x, prefix, stage.filters, stage.convs, stage.blocks, tuple(stage.kernel_size), stride,
                       decoder=False, path=f"encoder.stages[{i}]", activated=activated, block=stage_block(r, i))
        if i == depth and isinstance(down, StrideFirstConv):
            g.bottleneck_in = _entering_size(g, prefix)
        if i == depth and r.encoder.transformer is not None:
            x = plan_transformer(g, r.encoder.transformer, x)
        skips[level] = x
    if r.decoder.type != "unet":  # nested or full-scale skips: their own module
        from archgen.planner.topology import plan_topology  # loaded for these decoders only

        return plan_topology(g, r, skips)
    features = plan_decoder(g, r, x, skips, strides)
    g.outputs = plan_heads(g, r, features)
    g.prune()
    return g


def _entering_size(g: Graph, prefix: str) -> str:
    """The stage's first strided conv, whose output has the size the stage works at (a bottleneck
    block strides its second conv), else its first conv."""
    convs = [n for n in g.nodes if n.startswith(prefix + "_") and g.nodes[n].kind == "conv"]
    return next((n for n in convs if max(axes_of(g.nodes[n].attrs["stride"], g.ndim)) > 1), convs[0])


def stage_block(r: ArchSpec, i: int):
    """The encoder's block at stage ``i`` with the stage's own ``add_at``; None where it has none."""
    add_at, block = r.encoder.stages[i].add_at, r.encoder.block
    if add_at is None:
        return None
    if "add_at" not in type(block).model_fields:
        raise PlanError(f"a stage's add_at is where a residual block adds its shortcut, and encoder.block is a "
                        f"{block.type} block; remove it or use a residual block", path=f"encoder.stages[{i}].add_at",
                        value=add_at)
    return block.model_copy(update={"add_at": add_at})
