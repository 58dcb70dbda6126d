"""The transformer's kinds: Dense projections per token, multi-head self-attention over every
position, a learned bias added to every token (the attention's output bias where its projections
have none), and a learned position embedding of the map's size."""

from __future__ import annotations

from math import prod

from archgen.errors import PlanError
from archgen.kinds.base import (LayerKind, Locality, first_input, keeps_nothing, known_params, no_edges, no_workspace,
                                pixel, same_span, unit_factor)


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


KINDS = (
    LayerKind("dense", size=first_input, factor=unit_factor, params=known_params, flops=token_flops,
              span=same_span, saved=lambda layer, elements: (list(layer.inputs), 0),  # the kernel gradient
              workspace=no_workspace, locality=pixel, sees_edges=no_edges,
              note=lambda layer: f"{layer.attrs['units']} units", emitter="emit_dense"),
    LayerKind("attention", size=first_input, factor=unit_factor, params=known_params, flops=token_flops,
              span=attention_span, saved=attention_saved, workspace=no_workspace,
              locality=lambda a: (Locality.WHOLE_MAP, "self-attention: every position attends to every other"),
              sees_edges=no_edges, note=lambda layer: f"{layer.attrs['heads']} heads, key {layer.attrs['key_dim']}"
              + ("" if layer.attrs.get("use_bias", True) else ", no biases"),
              emitter="emit_attention"),
    # One learned vector added to every position: Keras's MultiHeadAttention has one use_bias for all
    # four projections, so an output bias without query, key and value biases is a layer of its own.
    LayerKind("bias", size=first_input, factor=unit_factor, params=known_params,
              flops=lambda node, nodes, spatial, in_spatial, ndim: 0, span=same_span, saved=keeps_nothing,
              workspace=no_workspace, locality=pixel, sees_edges=no_edges, note=lambda layer: "learned bias",
              emitter="emit_bias"),
    LayerKind("position_embedding", size=first_input, factor=unit_factor, params=embedding_params,
              flops=lambda node, nodes, spatial, in_spatial, ndim: 0, span=same_span, saved=keeps_nothing,
              workspace=no_workspace,
              locality=lambda a: (Locality.WHOLE_MAP, "position embedding: depends on where in the map a pixel is"),
              sees_edges=no_edges, note=lambda layer: "learned", emitter="emit_position_embedding"),
)
