"""The transformer's kinds: Dense projections per token, multi-head self-attention over every
position, a learned bias added to every token (the attention's output bias where its projections
have none), a learned position embedding of the map's size, and Swin's window attention and patch
merging."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod

from archgen.errors import PlanError
from archgen.kinds.base import (
    Attrs,
    KerasForm,
    LayerKind,
    Locality,
    NoAttrs,
    first_input,
    keeps_nothing,
    known_params,
    no_edges,
    no_workspace,
    pixel,
    same_span,
    unit_factor,
)


@dataclass(frozen=True)
class DenseAttrs(Attrs):
    units: int
    use_bias: bool = True


@dataclass(frozen=True)
class AttentionAttrs(Attrs):
    """Self-attention over every position; ``use_bias`` False: no biases on any of its projections."""

    heads: int
    key_dim: int
    use_bias: bool = True


@dataclass(frozen=True)
class WindowAttentionAttrs(Attrs):
    """Swin's attention within windows of ``window`` positions per axis, cyclically shifted by ``shift``."""

    heads: int
    window: tuple[int, ...]
    shift: tuple[int, ...]
    qkv_bias: bool


def token_flops(node, nodes, spatial, in_spatial, ndim) -> int | None:
    """2 x multiply-adds over the ``prod(spatial)`` tokens, one sample: attention counts its four
    projections, the query-key scores and the weighted sum of the values."""
    if any(s is None for s in spatial):
        return None
    tokens, a = prod(spatial), node.attrs
    if node.kind == "dense":
        return 2 * tokens * nodes[node.inputs[0]].channels * a["units"]
    inner = a["heads"] * a["key_dim"]
    return 2 * tokens * 4 * node.channels * inner + 2 * 2 * tokens * tokens * inner


def attention_span(layer, in_size, axis):
    if in_size is not None:  # every position attends to every other
        return (lambda lo: 0), (lambda hi: in_size - 1), (1, 0)
    return same_span(layer, in_size, axis)


def attention_saved(layer, elements):
    """Its input, and the scores before and after the softmax (not calibrated)."""
    tokens = elements[layer.name] // layer.shape[-1]
    return list(layer.inputs), 2 * layer.attrs["heads"] * tokens * tokens


def embedding_params(node, spatial, input_shape) -> int:
    """One vector per position: no spatial size can be open."""
    if any(s is None for s in spatial):
        raise PlanError("the transformer's learned position embedding holds one vector per bottleneck patch, so "
                        "no spatial size can be left open; give numbers", path="input.shape", value=list(input_shape))
    return prod(spatial) * node.channels


def window_layout(sizes, window, shift):
    """Swin's windows on a map of ``sizes``: each axis's window (the map's size where that is not
    larger than ``window``, then without a shift), its shift, and the padded sizes (whole windows)."""
    ws = tuple(min(w, n) for w, n in zip(window, sizes))
    shifts = tuple(0 if n <= w else s for w, n, s in zip(window, sizes, shift))
    padded = tuple(-(-n // w) * w for n, w in zip(sizes, ws))
    return ws, shifts, padded


def window_attention_params(channels: int, heads: int, window: tuple[int, ...], qkv_bias: bool) -> int:
    """The q/k/v projection (and its bias), the output projection and its bias, and one bias per head
    and relative offset within a window."""
    return 3 * channels * channels + (3 * channels if qkv_bias else 0) + channels * channels + channels + \
        prod(2 * w - 1 for w in window) * heads


def window_flops(node, nodes, spatial, in_spatial, ndim) -> int | None:
    """Over the padded map: the four projections per position, and per window the scores and the
    weighted sum, n positions each."""
    if any(s is None for s in spatial):
        return None
    ws, _, padded = window_layout(spatial, node.attrs["window"], node.attrs["shift"])
    positions, c = prod(padded), node.channels
    return 2 * positions * 4 * c * c + 2 * 2 * positions * prod(ws) * c


def window_saved(layer, elements):
    """Its input, and the scores before and after the softmax (not calibrated)."""
    ws, _, padded = window_layout(layer.shape[:-1], layer.attrs["window"], layer.attrs["shift"])
    return list(layer.inputs), 2 * layer.attrs["heads"] * prod(padded) * prod(ws)


def window_params(node, spatial, input_shape) -> int:
    """Known from its channels; but the windows' layout (padding, shifts, mask) follows the map's size,
    so no spatial size can be open."""
    if any(s is None for s in spatial):
        raise PlanError("window attention lays its windows, shifts and padding out over the whole map, so no "
                        "spatial size can be left open; give numbers", path="input.shape", value=list(input_shape))
    return node.params


def merge_size(node, sizes, amounts, axis, n_input) -> int:
    return (sizes[node.inputs[0]] + 1) // 2  # an odd size padded with a zero row


def merge_span(layer, in_size, axis):
    return (lambda lo: 2 * lo), (lambda hi: 2 * hi + 1), (1, 2)


KINDS = (
    LayerKind("dense", DenseAttrs, size=first_input, factor=unit_factor, params=known_params, flops=token_flops,
              span=same_span, saved=lambda layer, elements: (list(layer.inputs), 0),  # the kernel gradient
              workspace=no_workspace, locality=pixel, sees_edges=no_edges,
              note=lambda layer: f"{layer.attrs['units']} units", emitter="emit_dense",
              keras=KerasForm(("Dense",))),
    LayerKind("attention", AttentionAttrs, size=first_input, factor=unit_factor, params=known_params, flops=token_flops,
              span=attention_span, saved=attention_saved, workspace=no_workspace,
              locality=lambda a: (Locality.WHOLE_MAP, "self-attention: every position attends to every other"),
              sees_edges=no_edges, note=lambda layer: f"{layer.attrs['heads']} heads, key {layer.attrs['key_dim']}"
              + ("" if layer.attrs.get("use_bias", True) else ", no biases"),
              emitter="emit_attention", keras=KerasForm(("MultiHeadAttention",))),
    # One learned vector added to every position: Keras's MultiHeadAttention has one use_bias for all
    # four projections, so an output bias without query, key and value biases is a layer of its own.
    LayerKind("bias", NoAttrs, size=first_input, factor=unit_factor, params=known_params,
              flops=lambda node, nodes, spatial, in_spatial, ndim: 0, span=same_span, saved=keeps_nothing,
              workspace=no_workspace, locality=pixel, sees_edges=no_edges, note=lambda layer: "learned bias",
              emitter="emit_bias", keras=KerasForm(("Bias",))),
    # Attention within windows of a Swin stage (archgen's WindowAttention): the cyclic shift carries
    # windows across the map's ends, and the padding to whole windows depends on the map's size.
    LayerKind("window_attention", WindowAttentionAttrs, size=first_input, factor=unit_factor, params=window_params, flops=window_flops,
              span=attention_span, saved=window_saved, workspace=no_workspace,
              locality=lambda a: (Locality.WHOLE_MAP, "window attention: its windows, shifts and padding are laid "
                                                      "out over the whole map"),
              sees_edges=no_edges,
              note=lambda layer: f"{layer.attrs['heads']} heads, window {layer.attrs['window'][0]}"
              + (", shifted" if any(layer.attrs["shift"]) else ""), emitter="emit_window_attention",
              keras=KerasForm(("WindowAttention",))),
    # Each 2x2(x2) block of positions as one of 2^ndim x the channels (archgen's PatchMerge).
    LayerKind("patch_merge", NoAttrs, size=merge_size, factor=lambda a, ndim: (Fraction(2),) * ndim, params=known_params,
              flops=lambda node, nodes, spatial, in_spatial, ndim: 0, span=merge_span, saved=keeps_nothing,
              workspace=no_workspace, locality=lambda a: (Locality.WINDOW, ""), sees_edges=no_edges,
              note=lambda layer: "2x2 blocks to channels", emitter="emit_patch_merge",
              keras=KerasForm(("PatchMerge",))),
    LayerKind("position_embedding", NoAttrs, size=first_input, factor=unit_factor, params=embedding_params,
              flops=lambda node, nodes, spatial, in_spatial, ndim: 0, span=same_span, saved=keeps_nothing,
              workspace=no_workspace,
              locality=lambda a: (Locality.WHOLE_MAP, "position embedding: depends on where in the map a pixel is"),
              sees_edges=no_edges, note=lambda layer: "learned", emitter="emit_position_embedding",
              keras=KerasForm(("PositionEmbedding",))),
)
