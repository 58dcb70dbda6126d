"""Decoder topologies beyond the U-Net: UNet++ (nested dense skips) and UNet 3+ (full-scale skips).

The encoder is the same for every topology (``layout.build_graph`` lays it out); this module lays out
the decoder once the encoder's outputs are known, then the heads.

- UNet++ (Zhou et al. 2018). Node ``x{i}_{j}`` (row ``i`` = encoder level ``i + 1``, column ``j``)
  is ``x{i}_0`` for ``j = 0`` (the encoder's output at that level; ``x{depth}_0`` is the bottleneck),
  else the decoder stage of level ``i + 1`` applied to the concatenation of ``x{i}_0 .. x{i}_{j-1}``
  and the up-sampled ``x{i+1}_{j-1}``. Decoder level ``L`` is the last node of its row,
  ``x{L-1}_{depth-L+1}``; level 1 is ``x0_{depth}``.
- UNet 3+ (Huang et al. 2020). Decoder level ``L`` reads, coarsest first, the bottleneck and every
  deeper decoder level (resized up to its scale), the encoder's skip at its own level and every
  finer skip level (brought down to its scale as the encoder down-samples: a max or average pool of
  the scale, or a strided conv of kernel and stride the scale to ``cat_channels`` with the
  down-sampling's norm and activation, as keras-unet-collection's ``pool=False``; a max pool for
  the kinds without a layer of their own); each input passes one conv to ``cat_channels``
  (the decoder block's conv, norm and activation), then the concatenation is fused by the stage's
  convs (``cat_channels`` x the number of inputs filters, unless the stages say otherwise).

With valid padding the inputs of one node differ in size; each is centre-cropped to the smallest of
them (``crop`` with ``smallest_of``). All inputs of a node sit at one scale, so their sizes differ by
constants and the legal-size solver's progressions still hold.
"""

from __future__ import annotations

from math import prod

from archgen.errors import PlanError
from archgen.planner.graph import (Graph, compact, plan_block, plan_head_pre_conv, plan_head_preactivation,
                                   plan_heads, plan_stage, plan_strided_conv, plan_upsample, sampling_kernel)
from archgen.config.model import ArchSpec, AvgPool, ConcatMerge, ConvBlock, StridedConv, TransposeUp
from archgen.config.resolve_unet3p import cat_at


def plan_topology(g: Graph, r: ArchSpec, skips: dict[int, str]) -> Graph:
    """The decoder of a unet++ or unet3+ spec, its heads and deep supervision.

    ``skips[level]`` is the encoder's output at ``level`` (``depth + 1`` = the bottleneck).
    """
    depth = len(r.encoder.stages) - 1
    _check_joins(r)
    for i, head in enumerate(r.heads):
        if r.decoder.deep_supervision and head.deep_supervision:
            raise PlanError("decoder.deep_supervision already copies the level-1 heads onto the deeper outputs; "
                            "give deep supervision in one of the two places", path=f"heads[{i}].deep_supervision",
                            value=head.deep_supervision)
    if r.decoder.type == "unet++":
        features, top = _plan_unet_plus(g, r, skips, depth)
    else:
        features, top = _plan_unet_3plus(g, r, skips, depth)
    g.outputs = plan_heads(g, r, features)
    if r.decoder.deep_supervision:
        g.outputs.update(_plan_deep_supervision(g, r, top, depth))
    g.prune()
    return g


def _check_joins(r: ArchSpec) -> None:
    """Both topologies concatenate, and align by cropping to the smallest input (or not at all)."""
    dec = r.decoder
    for i, stage in enumerate(dec.stages):
        if stage.convs == 0:
            raise PlanError(f"decoder.type={dec.type} gives every node a block of its own; give it at least one conv",
                            path=f"decoder.stages[{i}].convs", value=0)
    if dec.merge_at != "after_upsample":
        raise PlanError(f"decoder.type={dec.type} up-samples each input before joining them",
                        path="decoder.merge_at", value=dec.merge_at)
    if dec.last_conv_only:
        raise PlanError(f"decoder.type={dec.type} ends its nodes with the block's norm and activation; remove it "
                        f"(or use decoder.type unet)", path="decoder.last_conv_only", value=True)
    if not isinstance(dec.merge, ConcatMerge):
        raise PlanError(f"decoder.type={dec.type} concatenates its inputs; use merge type concat",
                        path="decoder.merge.type", value=dec.merge.type)
    for i, align in enumerate(dec.align):
        if align not in ("crop", "none"):
            # One value for every level (the usual way to write it) is reported as that one key.
            path = "decoder.align" if len(set(dec.align)) == 1 else f"decoder.align[{i}]"
            raise PlanError(f"decoder.type={dec.type} crops every input of a node to the smallest of them; "
                            f"use crop (or none where sizes match)", path=path, value=align)


def scale_between(r: ArchSpec, fine: int, coarse: int) -> tuple[int, ...]:
    """Per spatial axis, how much smaller level ``coarse`` is than level ``fine`` (levels 1-based)."""
    stages = r.encoder.stages
    return tuple(prod(stages[m].stride[axis] for m in range(fine, coarse)) for axis in range(r.ndim))


def _join(g: Graph, r: ArchSpec, node: str, level: int, parts: list[tuple[str, str]]) -> str:
    """Crop each ``(label, layer)`` to the smallest of them (valid padding), then concatenate."""
    layers = [layer for _, layer in parts]
    if r.decoder.align[level - 1] == "crop" and len(parts) > 1:
        layers = [g.add(f"{node}_crop_{label}", "crop", (layer,), g.channels(layer), group=node,
                        path="decoder.align", smallest_of=tuple(x for _, x in parts))
                  for label, layer in parts]
    return g.add(f"{node}_concat", "concat", tuple(layers), sum(g.channels(x) for x in layers),
                 group=node, path="decoder.merge")


def _stage(g: Graph, r: ArchSpec, x: str, prefix: str, level: int, block=None) -> str:
    s = r.decoder.stages[level - 1]
    return plan_stage(g, r, x, prefix, s.filters, s.convs, s.blocks, tuple(s.kernel_size), (1,) * r.ndim,
                      decoder=True, path=f"decoder.stages[{level - 1}]", block=block)


def _plan_unet_plus(g: Graph, r: ArchSpec, skips: dict[int, str], depth: int):
    if r.decoder.skips != list(range(1, depth + 1)):
        raise PlanError(f"decoder.type=unet++ nests the skips of every level; use all (1..{depth})",
                        path="decoder.skips", value=r.decoder.skips)
    nodes = {(i, 0): skips[i + 1] for i in range(depth + 1)}
    skip_first = r.decoder.merge.order == "skip_up"
    for j in range(1, depth + 1):  # column by column, as the paper draws it
        for i in range(depth - j + 1):
            node, level = f"x{i}_{j}", i + 1
            up = plan_upsample(g, r, nodes[(i + 1, j - 1)], level, r.decoder.stages[i].up_filters,
                               tuple(r.encoder.stages[i + 1].stride), prefix=node)
            dense = [(f"x{i}_{k}", nodes[(i, k)]) for k in range(j)]
            parts = [*dense, ("up", up)] if skip_first else [("up", up), *dense]
            nodes[(i, j)] = _stage(g, r, _join(g, r, node, level, parts), node, level)
    features = {level: nodes[(level - 1, depth - level + 1)] for level in range(1, depth + 2)}
    return features, [(j, nodes[(0, j)]) for j in range(1, depth)]


def _plan_unet_3plus(g: Graph, r: ArchSpec, skips: dict[int, str], depth: int):
    up = r.decoder.upsample
    transpose = isinstance(up, TransposeUp)
    if not transpose and up.interpolation == "bilinear" and r.ndim != 2:
        raise PlanError(f"bilinear up-sampling works on 2D inputs only (Keras UpSampling{r.ndim}D has no "
                        f"interpolation); use nearest", path="decoder.upsample.interpolation", value="bilinear")
    block = r.decoder.block
    fusion = block if r.decoder.fusion_norm is None else block.model_copy(update={"norm": r.decoder.fusion_norm})
    # Each input's conv: the decoder block's conv, norm and activation, once, without residual or dropout.
    kept = set(ConvBlock.model_fields) & set(type(block).model_fields) - {"type", "dropout", "convs", "se"}
    if block.type == "rsu":  # its inner convs' channels and its bottom's dilation are the block's own
        kept -= {"inner_ratio", "dilation"}
    plain = ConvBlock.model_validate(block.model_dump(include=kept))
    floor = {"floor": True} if getattr(r.encoder.downsample, "odd_sizes", "refuse") == "floor" else {}
    features = {depth + 1: skips[depth + 1]}
    for level in range(depth, 0, -1):
        node, kernel = f"dec{level}", tuple(r.decoder.stages[level - 1].kernel_size)
        path, cat = f"decoder.stages[{level - 1}]", cat_at(r.decoder.cat_channels, level)
        parts = []
        for deeper in range(depth + 1, level, -1):  # the bottleneck first, then the deeper decoder levels
            label, scale = "bottleneck" if deeper == depth + 1 else f"dec{deeper}", scale_between(r, level, deeper)
            if transpose:  # keras-unet-collection's unpool=False: a transposed conv of stride the scale
                x = plan_strided_conv(g, up, features[deeper], f"{node}_from_{label}_up", cat,
                                      _up_kernel(r, scale, level), scale, "same", node)
            else:
                x = g.add(f"{node}_from_{label}_up", "upsample", (features[deeper],), g.channels(features[deeper]),
                          group=node, path="decoder.upsample", factor=compact(scale), interpolation=up.interpolation)
            parts.append((label, plan_block(g, r, x, f"{node}_from_{label}", cat, 1, kernel, (1,) * r.ndim,
                                            decoder=True, group=node, stage_path=path, block=plain)))
        for finer in range(level, 0, -1):  # the skip at this level, then the finer ones
            if finer not in r.decoder.skips:
                continue
            x, label = skips[finer], f"enc{finer}"
            if finer < level:
                x = _down_to(g, r, x, f"{node}_from_{label}", scale_between(r, finer, level), node, floor, cat)
            parts.append((label, plan_block(g, r, x, f"{node}_from_{label}", cat, 1, kernel, (1,) * r.ndim,
                                            decoder=True, group=node, stage_path=path, block=plain)))
        features[level] = _stage(g, r, _join(g, r, node, level, parts), node, level, fusion)
    return features, [(level, features[level]) for level in range(2, depth + 2)]


def _up_kernel(r: ArchSpec, scale: tuple[int, ...], level: int) -> tuple[int, ...]:
    """A unet3+ transposed conv's kernel into ``level``: ``decoder.upsample.kernel_size`` whatever the
    scale (keras-unet-collection's 3), the scale itself where it is null."""
    return sampling_kernel(r.decoder.upsample.kernel_size, scale, r.decoder.stages[level - 1].kernel_size,
                           "decoder.upsample.kernel_size")


def _down_to(g: Graph, r: ArchSpec, x: str, name: str, scale: tuple[int, ...], group: str, floor: dict,
             cat: int) -> str:
    """A finer skip brought down by ``scale`` as the encoder down-samples (see the module's docstring)."""
    down, path = r.encoder.downsample, "encoder.downsample"
    if not isinstance(down, StridedConv):
        kind = "avgpool" if isinstance(down, AvgPool) else "maxpool"
        return g.add(f"{name}_pool", kind, (x,), g.channels(x), group=group, path=path, factor=compact(scale),
                     **floor)
    if down.kernel_size not in (None, down.factor):
        raise PlanError(f"unet3+ brings finer skips down by strided convs whose kernel is the scale (the "
                        f"down-sampling's own kernel equals its factor); a kernel of {down.kernel_size} with factor "
                        f"{down.factor} has no such rule: leave kernel_size out", path="encoder.downsample.kernel_size",
                        value=down.kernel_size)
    return plan_strided_conv(g, down, x, f"{name}_down", cat, scale, scale, "valid", group)


def _plan_deep_supervision(g: Graph, r: ArchSpec, top: list[tuple[int, str]], depth: int) -> dict[str, str]:
    """A copy of every level-1 head on each intermediate output (see ``DecoderSpec.deep_supervision``)."""
    heads = [(i, h) for i, h in enumerate(r.heads) if h.level == 1]
    if not heads or depth < 1:
        raise PlanError("needs a head on decoder level 1 and encoder depth >= 1; deep supervision copies "
                        "the level-1 heads onto the intermediate outputs", path="decoder.deep_supervision",
                        value=True)
    outputs: dict[str, str] = {}
    for i, head in heads:
        path = "decoder.deep_supervision"
        if r.decoder.type == "unet++":
            for j, x in top:
                name = _free(g, r, outputs, f"{head.name}_x0_{j}", i)
                x = plan_head_pre_conv(g, r, i, name, plan_head_preactivation(g, r, i, name, x))
                outputs[name] = g.conv(name, x, head.filters, kernel=head.kernel_size, padding=r.padding,
                                       activation=head.activation, group="head", path=path)
            continue
        for level, feature in top:  # unet3+: conv at the level's scale, resized to level 1, then the activation
            name = _free(g, r, outputs, f"{head.name}_dec{level}", i, "conv", "up")
            last = head.activation == "linear"
            feature = plan_head_pre_conv(g, r, i, name, plan_head_preactivation(g, r, i, name, feature))
            x = g.conv(f"{name}_conv", feature, head.filters, kernel=head.kernel_size, padding=r.padding,
                       group="head", path=path)
            scale, up = scale_between(r, 1, level), r.decoder.upsample
            if isinstance(up, TransposeUp):  # keras-unet-collection's unpool=False: a plain transposed conv
                x = g.conv(name if last else f"{name}_up", x, head.filters, kernel=_up_kernel(r, scale, 1),
                           stride=scale, transpose=True, group="head", path=path)
            else:
                x = g.add(name if last else f"{name}_up", "upsample", (x,), head.filters, group="head", path=path,
                          factor=compact(scale), interpolation=up.interpolation)
            outputs[name] = x if last else g.activation(name, x, head.activation, group="head", path=path)
    return outputs


def _free(g: Graph, r: ArchSpec, outputs: dict[str, str], name: str, head: int, *inner: str) -> str:
    """``name`` for a deep-supervision output, after checking that it and its inner layers are new."""
    for taken in (name, *(f"{name}_{suffix}" for suffix in inner)):
        if taken in g.nodes or taken in outputs or taken in g.outputs:
            raise PlanError(f"deep supervision names a layer {taken}, which another layer or output already has; "
                            f"rename the head", path=f"heads[{head}].name", value=r.heads[head].name)
    return name
