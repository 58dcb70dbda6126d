"""TransUNet's transformer on the bottleneck (Chen et al. 2021), kept on the feature map's grid.

The tokens never leave the map's layout: patches are embedded by a conv whose kernel and stride are
the patch size (a linear map of each flattened patch, as ViT's patch embedding), the position
embedding adds one learned vector per patch position, and Keras's MultiHeadAttention attends over
every spatial axis at once (``attention_axes``), which is self-attention over the flattened tokens.
LayerNormalization and Dense act on the last axis, so no reshape is needed and every layer has a
per-axis size like the rest of the plan. Layers, for ``layers: 2``::

    bottleneck_vit_in      1x1 conv without bias (project_in; keras-unet-collection's conv_trans_before)
    bottleneck_vit_patch   conv, kernel = stride = patch_size, to embed_dim
    bottleneck_vit_pos     + learned position embedding (one embed_dim vector per patch)
    bottleneck_vit1_norm1, _attn, _add1, _norm2, _mlp1, _mlp_act1, _mlp2, (_mlp_act2), _add2
    bottleneck_vit2_...
    bottleneck_vit_norm    layer norm (final_norm)
    bottleneck_vit_out     1x1 conv back to the bottleneck's filters (a transposed conv of the patch
                           size where patches are larger than 1, back to the bottleneck's size)
"""

from __future__ import annotations


from archgen.errors import PlanError
from archgen.config.model import Transformer

PREFIX, GROUP, PATH = "bottleneck_vit", "bottleneck", "encoder.transformer"


def key_dim(t: Transformer) -> int:
    if t.key_dim is not None:
        return t.key_dim
    if t.embed_dim % t.heads:
        raise PlanError(f"key_dim is null, so embed_dim={t.embed_dim} is split between the heads, and {t.heads} "
                        f"heads do not divide it; set key_dim or use a divisor of embed_dim",
                        path=PATH + ".heads", value=t.heads)
    return t.embed_dim // t.heads


def attention_params(embed: int, heads: int, kdim: int) -> int:
    """Keras MultiHeadAttention with value_dim = key_dim: query, key and value projections (kernel and
    bias each), then the output projection back to ``embed`` (kernel and bias)."""
    return 3 * (embed * heads * kdim + heads * kdim) + heads * kdim * embed + embed


def plan_layers(g, x: str, prefixes: list[str], heads: int, kdim: int, mlp_dim: int, mlp_activation: str, *,
                group: str, path: str, activate_mlp_output: bool = False, qkv_bias: bool = True,
                epsilon: float | None = None) -> list[str]:
    """One pre-norm transformer layer per prefix from the tokens ``x`` (``{prefix}_norm1``, ``_attn``,
    ``_add1``, ``_norm2``, ``_mlp1``, ``_mlp_act1``, ``_mlp2``, (``_mlp_act2``), ``_add2``); returns
    each layer's output. Without ``qkv_bias`` the attention's projections have no bias and its output
    bias is a layer of its own (``{prefix}_attn_bias``)."""
    embed, outputs = g.channels(x), []
    for p in prefixes:
        h = g.norm(f"{p}_norm1", x, "layer", 1, group=group, path=path, epsilon=epsilon)
        params = attention_params(embed, heads, kdim) - (0 if qkv_bias else 3 * heads * kdim + embed)
        h = g.add(f"{p}_attn", "attention", (h,), embed, group=group, path=path, params=params, heads=heads,
                  key_dim=kdim, **({} if qkv_bias else {"use_bias": False}))
        if not qkv_bias:
            h = g.add(f"{p}_attn_bias", "bias", (h,), embed, group=group, path=path, params=embed)
        x = g.add(f"{p}_add1", "add", (h, x), embed, group=group, path=path)
        h = g.norm(f"{p}_norm2", x, "layer", 1, group=group, path=path, epsilon=epsilon)
        for j, units in ((1, mlp_dim), (2, embed)):
            h = g.add(f"{p}_mlp{j}", "dense", (h,), units, group=group, path=path,
                      params=g.channels(h) * units + units, units=units)
            if mlp_activation != "linear" and (j == 1 or activate_mlp_output):
                h = g.activation(f"{p}_mlp_act{j}", h, mlp_activation, group=group, path=path)
        x = g.add(f"{p}_add2", "add", (h, x), embed, group=group, path=path)
        outputs.append(x)
    return outputs


def plan_transformer(g, t: Transformer, x: str) -> str:
    """The transformer after the bottleneck's block; returns the map it hands to the decoder."""
    filters, embed, kdim = g.channels(x), t.embed_dim, key_dim(t)
    if t.project_in:
        x = g.conv(f"{PREFIX}_in", x, filters, kernel=1, use_bias=False, group=GROUP, path=PATH + ".project_in")
    x = g.conv(f"{PREFIX}_patch", x, embed, kernel=t.patch_size, stride=t.patch_size, padding="valid",
               group=GROUP, path=PATH + ".patch_size")
    if t.patch_size > 1:  # legal sizes step by whole patches: k counts patches, not bottleneck positions
        g.bottleneck_in = x
    x = g.add(f"{PREFIX}_pos", "position_embedding", (x,), embed, group=GROUP, path=PATH)
    x = plan_layers(g, x, [f"{PREFIX}{i}" for i in range(1, t.layers + 1)], t.heads, kdim, t.mlp_dim,
                    t.mlp_activation, activate_mlp_output=t.activate_mlp_output, group=GROUP, path=PATH)[-1]
    if t.final_norm:
        x = g.norm(f"{PREFIX}_norm", x, "layer", 1, group=GROUP, path=PATH)
    return g.conv(f"{PREFIX}_out", x, filters, kernel=t.patch_size, stride=t.patch_size, use_bias=t.out_bias,
                  transpose=t.patch_size > 1, group=GROUP, path=PATH)
