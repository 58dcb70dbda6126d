"""The registry of layer kinds: one ``LayerKind`` record per kind, each defined in the module of
its family. Every reader (planner, costs, tiling, emitter, reports) asks ``kind_of``; a kind
that is not registered is an error everywhere, never a default."""

from __future__ import annotations

from archgen.errors import PlanError
from archgen.kinds import (
    align,
    backbone,
    conv,
    inputs,
    merge,
    pointwise,
    pool,
    resample,
    transformer,
)
from archgen.kinds.base import Attrs, LayerKind, Locality, SizeError

__all__ = ["KINDS", "Attrs", "LayerKind", "Locality", "SizeError", "attrs_of", "kind_of"]

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


def attrs_of(kind: str, values: dict) -> Attrs:
    """The attribute record of a layer of ``kind``; ``TypeError`` naming the kind for an attribute its
    record does not have or one it needs and was not given (a planner's mistake, never a default)."""
    record = kind_of(kind).attrs
    unknown = sorted(set(values) - set(record.names()))
    if unknown:
        raise TypeError(f"a {kind} layer has no attribute {', '.join(unknown)}; {record.__name__} has "
                        f"{', '.join(record.names()) or 'none'}")
    try:
        return record(**values)
    except TypeError as exc:  # a field without a default left out
        raise TypeError(f"a {kind} layer needs {exc}".replace("__init__() missing", "")) from None
