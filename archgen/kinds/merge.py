"""Joining tensors of one size: concatenation, addition, multiplication (the attention gate), and
the squeeze-and-excitation gate (size 1 broadcast over its first input)."""

from __future__ import annotations

from archgen.kinds.base import (
    KerasForm,
    LayerKind,
    NoAttrs,
    first_input,
    keeps_nothing,
    known_params,
    no_edges,
    no_flops,
    no_note,
    no_workspace,
    pixel,
    same_inputs,
    same_span,
    unit_factor,
)


def _merge(name: str, emitter: str, keras: tuple[str, ...], saved=keeps_nothing, size=same_inputs,
           note=no_note) -> LayerKind:
    return LayerKind(name, NoAttrs, size=size, factor=unit_factor, params=known_params, flops=no_flops, span=same_span,
                     saved=saved, workspace=no_workspace, locality=pixel, sees_edges=no_edges, note=note,
                     emitter=emitter, keras=KerasForm(keras) if keras else None)


KINDS = (
    _merge("concat", "emit_concat", ("Concatenate",)),
    # per pixel, as a sum is: a model alone reads them all as add
    _merge("add", "emit_add", ("Add", "Subtract", "Maximum", "Minimum", "Average")),
    _merge("multiply", "emit_multiply", ("Multiply",), saved=lambda layer, elements: (list(layer.inputs), 0)),
    # The gate itself (a global pool) is what reads the whole map; this layer only applies it (a Keras
    # Multiply, which a model alone reads as multiply: the same facts).
    _merge("scale", "emit_scale", (), size=first_input, note=lambda layer: "x SE gate"),
)
