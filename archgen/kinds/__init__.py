"""The registry of layer kinds: one ``LayerKind`` record per kind, each defined in the module of
its family. Every reader (planner, costs, tiling, emitter, reports) asks ``kind_of``; a kind
that is not registered is an error everywhere, never a default."""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.kinds import align, backbone, conv, inputs, merge, pointwise, pool, resample, transformer
from archgen.kinds.base import LayerKind, Locality, SizeError

__all__ = ["KINDS", "LayerKind", "Locality", "SizeError", "kind_of"]

KINDS: dict[str, LayerKind] = {}
for _module in (inputs, conv, pool, resample, align, pointwise, merge, transformer, backbone):
    for _kind in _module.KINDS:
        assert _kind.name not in KINDS, f"layer kind {_kind.name!r} registered twice"
        KINDS[_kind.name] = _kind


def kind_of(name: str) -> LayerKind:
    """The record of layer kind ``name``; ``PlanError`` for a kind archgen does not know."""
    try:
        return KINDS[name]
    except KeyError:
        from archgen.errors import did_you_mean

        raise PlanError(f"unknown layer kind{did_you_mean(name, list(KINDS))}; known: {', '.join(KINDS)}",
                        path="layer.kind", value=name) from None
