"""Spatial sizes along one axis, each layer's from its kind's record (``archgen.kinds``).

Every op acts on each spatial axis alone, so a whole input shape is solved one axis at a time,
and the legal-size solver probes a single axis. Kernels, strides and factors may differ per axis
(an int is the same on every axis, a tuple gives one per axis).
"""

from __future__ import annotations

from archgen.kinds import SizeError, kind_of
from archgen.planner.ir import Node

__all__ = ["SizeError", "infer_axis"]


def infer_axis(nodes: list[Node], n: int, axis: int = 0) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """Sizes of every node on spatial axis ``axis`` for input size ``n``, and each crop/pad as
    (before, after).

    Raises ``SizeError`` at the first layer that cannot take its size.
    """
    sizes: dict[str, int] = {}
    amounts: dict[str, tuple[int, int]] = {}
    for node in nodes:
        sizes[node.name] = kind_of(node.kind).size(node, sizes, amounts, axis, n)
    return sizes, amounts
