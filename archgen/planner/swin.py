"""Spec with a Swin transformer on the input (``encoder.type: swin``, SwinUNETR) -> graph of ``Node``.

Levels, for 4 stages (``depths``)::

    level 1  enc1                       the encoder's block on the input
    level 2  swin_patch                 conv, kernel and stride 2, to embed_dim (the patches);
             swin_patch_norm            a layer norm on them, where ``patch_norm``
             swin1_block{j}_*           the first stage's blocks, at this size
    level 3  swin1_merge, _merge_norm, swin1_reduce   patch merging into the next level
             swin2_block{j}_* ...
    level 6  swin4_merge ... swin4_reduce             the bottleneck

With ``stage_blocks`` (SwinUNETR v2) each stage starts with the encoder's block (``swin{i}_res_*``)
on its input, after that input was handed to its level. Each level's output from 2 on passes
through ``swin_level{L}_norm`` (a layer norm without scale or shift, ``normalize``) and, where
``blocks_at`` lists the level, the encoder's block (``enc{L}``; ``bottleneck`` for the deepest)
before the decoder reads it; the stages go on from the un-normed output. A block's attention is ``swin{i}_block{j}_attn``, every second one with shifted windows.
"""

from __future__ import annotations

import math

from archgen.errors import PlanError
from archgen.config.model import ArchSpec
from archgen.kinds.transformer import window_attention_params
from archgen.config.short_form import per_axis
from archgen.planner.graph import Graph, plan_block, plan_decoder, plan_heads
from archgen.planner.vit import kernel_of

PATH = "encoder"


def plan_stage(g: Graph, r: ArchSpec, x: str, i: int, group: str) -> str:
    """Stage ``i`` (1 = the first)'s blocks from ``x``."""
    enc, nd = r.encoder, r.ndim
    c, heads = g.channels(x), enc.heads[i - 1]
    window = tuple(per_axis(enc.window_size, nd, PATH + ".window_size"))
    hidden = int(c * enc.mlp_ratio)
    if hidden < 1:
        least = math.ceil(1e6 / c) / 1e6  # 1 / c rounded up at six decimals: c x least is at least one
        raise PlanError(f"stage {i}'s MLP would have {c} x {enc.mlp_ratio} rounded down, 0 units; give a ratio of at "
                        f"least {least:g}", path=PATH + ".mlp_ratio", value=enc.mlp_ratio)
    for j in range(1, enc.depths[i - 1] + 1):
        p = f"swin{i}_block{j}"
        shift = tuple(w // 2 for w in window) if j % 2 == 0 else (0,) * nd
        h = g.norm(f"{p}_norm1", x, "layer", 1, group=group, path=PATH, epsilon=enc.norm_epsilon)
        h = g.add(f"{p}_attn", "window_attention", (h,), c, group=group, path=PATH + ".window_size",
                  params=window_attention_params(c, heads, window, enc.qkv_bias), heads=heads, window=window,
                  shift=shift, qkv_bias=enc.qkv_bias)
        x = g.add(f"{p}_add1", "add", (h, x), c, group=group, path=PATH)
        h = g.norm(f"{p}_norm2", x, "layer", 1, group=group, path=PATH, epsilon=enc.norm_epsilon)
        for k, units in ((1, hidden), (2, c)):
            h = g.add(f"{p}_mlp{k}", "dense", (h,), units, group=group, path=PATH + ".mlp_ratio",
                      params=g.channels(h) * units + units, units=units)
            if k == 1 and enc.mlp_activation != "linear":
                h = g.activation(f"{p}_mlp_act1", h, enc.mlp_activation, group=group, path=PATH)
        x = g.add(f"{p}_add2", "add", (h, x), c, group=group, path=PATH)
    return x


def plan_merge(g: Graph, r: ArchSpec, x: str, i: int, group: str) -> str:
    """Stage ``i``'s patch merging: 2x2(x2) blocks to channels, a layer norm, a Dense without bias to
    twice the stage's channels."""
    c, blocks = g.channels(x), 2 ** r.ndim
    x = g.add(f"swin{i}_merge", "patch_merge", (x,), blocks * c, group=group, path=PATH + ".depths")
    x = g.norm(f"swin{i}_merge_norm", x, "layer", 1, group=group, path=PATH, epsilon=r.encoder.norm_epsilon)
    return g.add(f"swin{i}_reduce", "dense", (x,), 2 * c, group=group, path=PATH, params=blocks * c * 2 * c,
                 units=2 * c, use_bias=False)


def build_swin_graph(r: ArchSpec) -> Graph:
    """Lay out input, the Swin transformer, the levels' norms and blocks, decoder and heads of a
    resolved spec whose encoder is a Swin transformer."""
    from archgen.config.resolve_vit import check_swin_encoder

    check_swin_encoder(r)
    enc, nd = r.encoder, r.ndim
    stages = len(enc.depths)
    deepest = stages + 2
    g = Graph(nd)
    ones, twos = (1,) * nd, (2,) * nd
    x = g.add("input", "input", (), r.input.shape[-1], group="input", path="input")

    def group(level: int) -> str:
        return "bottleneck" if level == deepest else f"enc{level}"

    skips = {1: plan_block(g, r, x, "enc1", enc.embed_dim, enc.block.convs, kernel_of(r, 1), ones, decoder=False,
                           group="enc1", stage_path=PATH + ".block")}
    h = g.conv("swin_patch", x, enc.embed_dim, kernel=twos, stride=twos, padding="valid", group="enc2",
               path=PATH + ".embed_dim")
    if enc.patch_norm:  # MONAI's patch_norm: a layer norm on the patches
        h = g.norm("swin_patch_norm", h, "layer", 1, group="enc2", path=PATH + ".patch_norm", epsilon=enc.norm_epsilon)
    outputs = {2: h}
    for i in range(1, stages + 1):
        if enc.stage_blocks:  # SwinUNETR v2: a residual conv block on the stage's input
            h = plan_block(g, r, h, f"swin{i}_res", g.channels(h), enc.block.convs, kernel_of(r, i + 1), ones,
                           decoder=False, group=group(i + 1), stage_path=PATH + ".stage_blocks")
        h = plan_stage(g, r, h, i, group(i + 1))
        h = plan_merge(g, r, h, i, group(i + 2))
        outputs[i + 2] = h
    g.bottleneck_in = h
    for level, out in outputs.items():
        if enc.normalize:
            out = g.norm(f"swin_level{level}_norm", out, "layer", 1, group=group(level), path=PATH + ".normalize",
                         epsilon=enc.norm_epsilon, affine=False)
        if level in enc.blocks_at:
            out = plan_block(g, r, out, group(level), g.channels(out), enc.block.convs, kernel_of(r, level), ones,
                             decoder=False, group=group(level), stage_path=PATH + ".blocks_at")
        skips[level] = out
    bottleneck = skips.pop(deepest)
    features = plan_decoder(g, r, bottleneck, skips, [ones] + [twos] * (deepest - 1))
    g.outputs = plan_heads(g, r, features)
    g.prune()
    return g
