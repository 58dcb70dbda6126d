"""U-Net 2's residual U-block (Qin et al. 2020), as keras-unet-collection's ``RSU`` and ``RSU4F``.

Layers of a block named ``enc2`` of ``height: 2`` (F: the level's filters, M: ``mid_filters``)::

    enc2_in_conv / _norm / _act            conv to F (strides where the stage does)
    enc2_rsu_enc1_conv ...                 conv to M: inner level 1
    enc2_rsu_enc1_pool                     max pool by 2
    enc2_rsu_enc2_conv ...                 inner level 2
    enc2_rsu_enc2_pool
    enc2_rsu_enc3_conv ...                 inner level 3 (height + 1 inner levels)
    enc2_rsu_bottleneck_conv ...           conv to M dilated by ``dilation``, at inner level 3
    enc2_rsu_dec3_concat, enc2_rsu_dec3_conv ...   the bottleneck's output and enc3's, conv to M
    enc2_rsu_dec2_up, _concat, _conv ...   up-sampled by 2, enc2's joined, conv to M
    enc2_rsu_dec1_up, _concat, _conv ...   up-sampled by 2, enc1's joined, conv to F
    enc2_se_*                              squeeze-and-excitation, where the block asks for it
    enc2_residual                          enc2_in's output added
    enc2_drop                              dropout, where asked

``height: dilated`` (RSU-4F) pools nothing: with ``dilations`` d1..dn, inner levels 1..n-1 have
convs dilated by d1..d(n-1), the bottleneck by dn, the decoder's ``dec{i}`` convs by d_i, all
at the block's size, except ``dec1``'s (to F), which is not dilated. Every concatenation puts the
decoder's feature first. With valid padding each joined inner level is centre-cropped to the
decoder's feature (``_crop``) and the input conv's output to the block's (``shortcut_crop``).
"""

from __future__ import annotations

import re

from archgen.errors import PlanError
from archgen.planner.axes import fusable
from archgen.planner.blocks.se import plan_se
from archgen.planner.blocks.site import BlockSite
from archgen.config.model import RSUBlock

BLOCK_TYPE = "rsu"


def at_level(block: RSUBlock, site: BlockSite, key: str):
    """The block's ``key`` (one value, or one per level) at the level its site's group names
    (``enc2``, ``dec2``, ``x1_2``: level 2; ``bottleneck``: the last entry)."""
    values = getattr(block, key)
    if not isinstance(values, list):
        return values
    if site.group == "bottleneck":
        return values[-1]
    match = re.fullmatch(r"(?:enc|dec)(\d+)", site.group) or re.fullmatch(r"x(\d+)_\d+", site.group)
    if match is None:
        raise PlanError(f"one {key} per level needs a block at a level; {site.prefix} is not at one: give one value",
                        path=f"{site.path}.{key}", value=values)
    level = int(match.group(1)) + (1 if site.group.startswith("x") else 0)
    if level > len(values):
        raise PlanError(f"has {len(values)} entries; a block at level {level} needs one there",
                        path=f"{site.path}.{key}", value=values)
    return values[level - 1]


def inner_factor(block, level: int, levels: int) -> int:
    """How much an rsu block at ``level`` (of ``levels``, the last the bottleneck) pools inside: 2 to
    its height (1 for a dilated block, or a block of another type)."""
    if getattr(block, "type", None) != "rsu":
        return 1
    height = block.height
    if isinstance(height, list):
        height = height[-1] if level == levels else height[min(level, len(height)) - 1]
    return 1 if height == "dilated" else 2 ** height


def plan(g, site: BlockSite, block: RSUBlock, x: str) -> str:
    """The block's layers from ``x``; returns the name of its output (after its dropout, if any)."""
    p, group, path = site.prefix, site.group, site.path
    if site.plain_last:
        raise PlanError("an rsu block ends in an addition, so it has no last conv to leave plain; use a conv or "
                        "residual decoder block, or remove last_conv_only", path="decoder.last_conv_only", value=True)
    if block.order == "pre_activation":
        raise PlanError("an rsu block's convs each have their norm and activation after them; use norm_act or "
                        "act_norm", path=path + ".order", value=block.order)
    ndim = len(site.kernel)
    if block.interpolation == "bilinear" and ndim != 2:
        raise PlanError(f"bilinear up-sampling works on 2D inputs only (Keras UpSampling{ndim}D has no "
                        f"interpolation); use linear or nearest", path=path + ".interpolation", value="bilinear")
    height = at_level(block, site, "height")
    mid = at_level(block, site, "mid_filters")
    if mid is None:
        mid = max(1, round(site.filters * block.inner_ratio))
    with_norm = block.norm != "none"
    use_bias = not with_norm if block.bias is None else block.bias
    act, slope = block.activation, block.negative_slope
    act_first = block.order == "act_norm"
    conv_acts = fusable(act, slope) and (not with_norm or act_first)  # the conv applies the activation itself
    own_act = act != "linear" and not conv_acts
    valid = site.padding == "valid"

    def conv(name: str, x: str, filters: int, dilation: int = 1, stride: tuple[int, ...] | None = None) -> str:
        if stride is not None and any(s > 1 for s in stride) and dilation > 1:
            raise PlanError(f"{name}_conv strides and Keras cannot dilate a strided conv", path=path, value=dilation)
        x = g.conv(f"{name}_conv", x, filters, kernel=site.kernel, dilation=dilation, stride=stride or 1,
                   padding=site.padding, activation=act if conv_acts else "linear", use_bias=use_bias, group=group,
                   path=path)
        if own_act and act_first:
            x = g.activation(f"{name}_act", x, act, group=group, path=path, negative_slope=slope)
        if with_norm:
            x = g.norm(f"{name}_norm", x, block.norm, block.groups, group=group, path=path,
                       epsilon=block.norm_epsilon, affine=block.norm_affine)
        if own_act and not act_first:
            x = g.activation(f"{name}_act", x, act, group=group, path=path, negative_slope=slope)
        return x

    def join(level: int, x: str, skip: str) -> str:
        name = f"{p}_rsu_dec{level}"
        if valid:
            skip = g.add(f"{name}_crop", "crop", (skip,), g.channels(skip), like=x, group=group, path=path)
        return g.add(f"{name}_concat", "concat", (x, skip), g.channels(x) + g.channels(skip), group=group, path=path)

    shortcut = conv(f"{p}_in", x, site.filters, stride=site.stride)
    inner: list[str] = []  # each inner level's encoder conv, level 1 first
    x = shortcut
    if height == "dilated":
        dilations = block.dilations
        for level, d in enumerate(dilations[:-1], 1):
            x = conv(f"{p}_rsu_enc{level}", x, mid, d)
            inner.append(x)
        x = conv(f"{p}_rsu_bottleneck", x, mid, dilations[-1])
        for level in range(len(inner), 0, -1):
            x = conv(f"{p}_rsu_dec{level}", join(level, x, inner[level - 1]), site.filters if level == 1 else mid,
                     dilations[level - 1] if level > 1 else 1)
    else:
        for level in range(1, height + 2):
            if level > 1:
                x = g.add(f"{p}_rsu_enc{level - 1}_pool", "maxpool", (x,), mid, group=group, path=path, factor=2)
            x = conv(f"{p}_rsu_enc{level}", x, mid)
            inner.append(x)
        x = conv(f"{p}_rsu_bottleneck", x, mid, block.dilation)
        for level in range(height + 1, 0, -1):
            if level <= height:
                x = g.add(f"{p}_rsu_dec{level}_up", "upsample", (x,), mid, group=group, path=path, factor=2,
                          interpolation=block.interpolation)
            x = conv(f"{p}_rsu_dec{level}", join(level, x, inner[level - 1]), site.filters if level == 1 else mid)
    if block.se is not None:
        x = plan_se(g, x, p, block.se, group=group, path=path)
    if valid:
        shortcut = g.add(f"{p}_shortcut_crop", "crop", (shortcut,), site.filters, like=x, group=group, path=path)
    x = g.add(f"{p}_residual", "add", (x, shortcut), site.filters, group=group, path=path)
    if block.dropout > 0:
        x = g.add(f"{p}_drop", "dropout", (x,), site.filters, group=group, path=path, rate=block.dropout)
    return x
