"""ConvNeXt's block (Liu et al. 2022) as MedNeXt (Roy et al. 2023) builds it, and the same block
down-sampling out of a level or up-sampling into one (MedNeXt's down and up blocks).

Layers of a block named ``enc2`` (C input channels, ``expansion: 2``, the level's filters F)::

    enc2_dwconv      depthwise conv of the block's kernel, C channels (strided in a down block)
    enc2_norm        the block's norm
    enc2_expand      1x1 conv to 2C, with the activation (``enc2_act`` where it is a layer of its own)
    enc2_grn         global response normalisation, where ``global_resp_norm``
    enc2_compress    1x1 conv to F
    enc2_se_*        squeeze-and-excitation, where the block asks for it
    enc2_proj        1x1 conv (strided where the block strides) where C != F or the size changes
    enc2_residual    the block's input (or its projection) added
    enc2_drop        dropout, where asked

An up block (``dec2_up_*``) transposes its depthwise conv and its projection, with the factor as
stride. As PyTorch places a ConvTranspose with padding kernel // 2, the depthwise conv's full output
is cropped by kernel // 2 rows before and the rest after (``dec2_up_crop``), leaving
(n - 1) * factor + 1 rows, as many as the 1x1 projection's; after the addition factor - 1 zero rows
before each axis (``dec2_up_pad``) bring it to factor * n, as MedNeXt's up block pads its output.
"""

from __future__ import annotations

import re

from archgen.errors import PlanError
from archgen.planner.axes import fusable
from archgen.planner.blocks.se import plan_se
from archgen.planner.blocks.site import BlockSite
from archgen.config.model import ConvNeXtBlock

BLOCK_TYPE = "convnext"


def plan(g, site: BlockSite, block: ConvNeXtBlock, x: str) -> str:
    """The block's layers from ``x`` (its depthwise conv strides by the site's stride); returns its output."""
    return _plan(g, site, block, x, up=False)


def plan_up(g, site: BlockSite, block: ConvNeXtBlock, x: str) -> str:
    """The block up-sampling ``x`` by the site's stride, to the site's filters (MedNeXt's up block)."""
    return _plan(g, site, block, x, up=True)


def expansion_at(block: ConvNeXtBlock, site: BlockSite) -> int:
    """The block's expansion at the level its site's group names (``enc2``, ``dec2``, ``x1_2``: level 2;
    ``bottleneck``: the last entry)."""
    if isinstance(block.expansion, int):
        return block.expansion
    if site.group == "bottleneck":
        return block.expansion[-1]
    match = re.fullmatch(r"(?:enc|dec)(\d+)", site.group) or re.fullmatch(r"x(\d+)_\d+", site.group)
    if match is None:
        raise PlanError(f"one expansion per level needs a block at a level; {site.prefix} is not at one: "
                        f"give one number", path=site.path + ".expansion", value=block.expansion)
    level = int(match.group(1)) + (1 if site.group.startswith("x") else 0)
    if level > len(block.expansion):
        raise PlanError(f"has {len(block.expansion)} entries; a block at level {level} needs one there",
                        path=site.path + ".expansion", value=block.expansion)
    return block.expansion[level - 1]


def _plan(g, site: BlockSite, block: ConvNeXtBlock, x: str, *, up: bool) -> str:
    p, group, path = site.prefix, site.group, site.path
    if block.dilation > 1 and (site.strides or up):
        raise PlanError(f"{p}_dwconv strides, and Keras cannot dilate a strided conv; use dilation 1",
                        path=path + ".dilation", value=block.dilation)
    channels = g.channels(x)
    ndim = len(site.kernel)
    if up:
        h = g.conv(f"{p}_dwconv", x, channels, kernel=site.kernel, stride=site.stride, padding="valid",
                   use_bias=block.bias, transpose=True, depthwise=True, group=group, path=path)
        h = g.add(f"{p}_crop", "crop", (h,), channels, group=group, path=path,
                  amounts=tuple((k // 2, k - 1 - k // 2) for k in site.kernel))
    else:
        h = g.conv(f"{p}_dwconv", x, channels, kernel=site.kernel, stride=site.stride, dilation=block.dilation,
                   padding=site.padding, use_bias=block.bias, depthwise=True, group=group, path=path)
    if block.norm != "none":
        h = g.norm(f"{p}_norm", h, block.norm, block.groups, group=group, path=path, epsilon=block.norm_epsilon,
                   affine=block.norm_affine)
    act, slope = block.activation, block.negative_slope
    fused = fusable(act, slope)
    h = g.conv(f"{p}_expand", h, expansion_at(block, site) * channels, kernel=1, activation=act if fused else "linear",
               use_bias=block.bias, group=group, path=path)
    if act != "linear" and not fused:
        h = g.activation(f"{p}_act", h, act, group=group, path=path, negative_slope=slope)
    if block.global_resp_norm:
        h = g.norm(f"{p}_grn", h, "grn", 1, group=group, path=path)
    h = g.conv(f"{p}_compress", h, site.filters, kernel=1, use_bias=block.bias, group=group, path=path)
    if block.se is not None:
        h = plan_se(g, h, p, block.se, group=group, path=path)
    if block.residual:
        shortcut = x
        if up:
            shortcut = g.conv(f"{p}_proj", x, site.filters, kernel=1, stride=site.stride, padding="valid",
                              use_bias=block.bias, transpose=True, group=group, path=path)
        elif channels != site.filters or site.strides:
            shortcut = g.conv(f"{p}_proj", x, site.filters, kernel=1, stride=site.stride, use_bias=block.bias,
                              group=group, path=path)
        if not up and site.padding == "valid" and any((k - 1) * block.dilation > 0 for k in site.kernel):
            shortcut = g.add(f"{p}_shortcut_crop", "crop", (shortcut,), site.filters, like=h, group=group,
                             path=path)
        h = g.add(f"{p}_residual", "add", (h, shortcut), site.filters, group=group, path=path)
    if up:
        h = g.add(f"{p}_pad", "pad", (h,), site.filters, group=group, path=path, stride=(1,) * ndim,
                  amounts=tuple((s - 1, 0) for s in site.stride))
    if block.dropout > 0 and not site.plain_last:
        h = g.add(f"{p}_drop", "dropout", (h,), site.filters, group=group, path=path, rate=block.dropout)
    return h
