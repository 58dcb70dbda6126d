"""Spec with a vision transformer on the input (``encoder.type: vit``, UNETR) -> graph of ``Node``.

The transformer runs on the patch grid (input / patch_size), kept in the map's layout as the
bottleneck's transformer is (``archgen.planner.blocks.transformer``): a conv whose kernel and stride
are the patch size embeds the patches (``vit_patch``), a learned position embedding follows
(``vit_pos``), then the layers (``vit_layer1_norm1`` ... ``vit_layer12_add2``) and the final layer
norm (``vit_norm``): the bottleneck, level depth + 1. The skips::

    enc1                      the encoder's block on the input (level 1)
    encL_proj                 layer taps[L - 2]'s output, transposed conv (kernel = stride = 2)
                              to level L's filters
    encL_prup1_up, encL_prup1 ... a transposed conv and the block, once per level between L and
                              the bottleneck's next level (depth - L times)

The decoder and heads are planned as for any other encoder, up-sampling by 2 per level.
"""

from __future__ import annotations

from archgen.config.model import ArchSpec
from archgen.errors import PlanError
from archgen.planner.blocks.transformer import plan_layers
from archgen.planner.graph import Graph, plan_block, plan_decoder, plan_heads

GROUP, PATH = "bottleneck", "encoder"


def plan_vit(g: Graph, r: ArchSpec, x: str) -> list[str]:
    """Patch embedding, position embedding and the layers from the input ``x``; returns each layer's
    output, the last through the final norm where there is one."""
    enc = r.encoder
    x = g.conv("vit_patch", x, enc.embed_dim, kernel=enc.patch_size, stride=enc.patch_size, padding="valid",
               group=GROUP, path=PATH + ".patch_size")
    g.bottleneck_in = x  # legal sizes step by whole patches
    x = g.add("vit_pos", "position_embedding", (x,), enc.embed_dim, group=GROUP, path=PATH)
    outputs = plan_layers(g, x, [f"vit_layer{i}" for i in range(1, enc.layers + 1)], enc.heads,
                          enc.embed_dim // enc.heads, enc.mlp_dim, enc.mlp_activation, group=GROUP, path=PATH,
                          qkv_bias=enc.qkv_bias, epsilon=enc.norm_epsilon)
    if enc.final_norm:
        outputs[-1] = g.norm("vit_norm", outputs[-1], "layer", 1, group=GROUP, path=PATH + ".final_norm",
                             epsilon=enc.norm_epsilon)
    return outputs


def kernel_of(r: ArchSpec, level: int) -> tuple[int, ...]:
    """The encoder block's kernel at ``level``: its kernel_size, or the list's entry for the level."""
    kernel = r.encoder.block.kernel_size
    if isinstance(kernel, list):
        if level > len(kernel):
            raise PlanError(f"has {len(kernel)} entries, one per level from level 1; level {level} has a block",
                            path="encoder.block.kernel_size", value=kernel)
        kernel = kernel[level - 1]
    return (kernel,) * r.ndim


def plan_tap_path(g: Graph, r: ArchSpec, x: str, level: int, depth: int) -> str:
    """Level ``level``'s skip from a layer's output ``x`` on the patch grid (MONAI's UnetrPrUpBlock)."""
    enc, group, twos = r.encoder, f"enc{level}", (2,) * r.ndim
    filters = enc.filters[level - 1]
    x = g.conv(f"{group}_proj", x, filters, kernel=twos, stride=twos, use_bias=enc.up_bias, transpose=True,
               group=group, path=PATH + ".taps")
    for j in range(1, depth - level + 1):
        prefix = f"{group}_prup{j}"
        x = g.conv(f"{prefix}_up", x, filters, kernel=twos, stride=twos, use_bias=enc.up_bias, transpose=True,
                   group=group, path=PATH + ".up_bias")
        if enc.tap_blocks:
            x = plan_block(g, r, x, prefix, filters, enc.block.convs, kernel_of(r, level), (1,) * r.ndim,
                           decoder=False, group=group, stage_path=PATH + ".block")
    return x


def build_vit_graph(r: ArchSpec) -> Graph:
    """Lay out input, transformer, the skips' paths, decoder and heads of a resolved spec whose
    encoder is a vision transformer."""
    from archgen.config.resolve_vit import check_vit_encoder

    check_vit_encoder(r)
    enc = r.encoder
    depth = len(enc.filters)
    g = Graph(r.ndim)
    x = g.add("input", "input", (), r.input.shape[-1], group="input", path="input")
    ones = (1,) * r.ndim
    layers = plan_vit(g, r, x)
    skips = {1: plan_block(g, r, x, "enc1", enc.filters[0], enc.block.convs, kernel_of(r, 1), ones,
                           decoder=False, group="enc1", stage_path=PATH + ".block")}
    for level, tap in enumerate(enc.taps, start=2):
        skips[level] = plan_tap_path(g, r, layers[tap - 1], level, depth)
    features = plan_decoder(g, r, layers[-1], skips, [ones] + [(2,) * r.ndim] * depth)
    g.outputs = plan_heads(g, r, features)
    g.prune()
    return g
