"""The network's input."""

from __future__ import annotations

from archgen.kinds.base import (
    KerasForm,
    LayerKind,
    NoAttrs,
    SizeError,
    keeps_nothing,
    known_params,
    no_edges,
    no_flops,
    no_note,
    no_workspace,
    pixel,
    same_span,
    unit_factor,
)


def input_size(node, sizes, amounts, axis, n: int) -> int:
    if n < 1:
        raise SizeError(node, n, "not a positive size")
    return n


KINDS = (
    LayerKind("input", NoAttrs, size=input_size, factor=unit_factor, params=known_params, flops=no_flops, span=same_span,
              saved=keeps_nothing, workspace=no_workspace, locality=pixel, sees_edges=no_edges, note=no_note,
              emitter="emit_input", keras=KerasForm(("InputLayer",))),
)
