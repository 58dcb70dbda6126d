"""Which input sizes tile seamlessly, derived by probing the planner on one axis.

Every down-sampling divides by its factor exactly and every conv shifts the size by a
constant, so the legal sizes of an axis form one arithmetic progression
``n = P*k + c`` (``P`` = product of down-sampling factors, ``k`` = size entering the
bottleneck) from some smallest ``k`` on, and each head's size is affine in ``n``. The
solver finds the residue by probing one large size per residue class, the smallest ``k``
by bisection, and the affine output maps from two legal sizes.

Nested and full-scale decoders (``topology.py``) crop every input of a node to the smallest of
them. Those inputs sit at one scale, so their sizes differ by constants, the same input is the
smallest at every size, and each crop is a constant: the progression and the affine maps hold.
A pooled finer skip must tile its whole factor, which the probe checks like any other pooling.
"""

from __future__ import annotations

from fractions import Fraction

from archgen.planner.ir import Node, SizeRule
from archgen.planner.shapes import SizeError, infer_axis

# Probing is P inferences; beyond this the rule is not derived (such a net is absurd anyway).
MAX_PERIOD = 4096
_FAR = 1 << 20  # k this large clears every lower bound that valid convs put on a size


def _legal_on(nodes: list[Node], n: int, axis: int = 0) -> dict[str, int] | None:
    try:
        return infer_axis(nodes, n, axis)[0]
    except SizeError:
        return None


_SHAPE_ATTRS = ("kernel", "stride", "dilation", "padding", "factor", "floor", "amounts", "min_size",
                "smallest_of", "window")
_cache: dict[tuple, SizeRule | None] = {}


def solve_sizes(nodes: list[Node], period: int, heads: dict[str, str], bottleneck_in: str,
                axis: int = 0) -> SizeRule | None:
    """The legal-size rule of one axis, or None when there is none (or it is not one progression).

    Memoised on what sizes depend on (kinds, wiring, kernels, strides, padding), not on channels:
    a sweep over filters or blocks solves once.
    """
    key = (period, bottleneck_in, axis, tuple(heads.items()),
           tuple((n.name, n.kind, n.inputs, n.like, tuple(n.attrs.get(a) for a in _SHAPE_ATTRS)) for n in nodes))
    if key not in _cache:
        if len(_cache) > 1024:
            _cache.clear()
        _cache[key] = _solve(nodes, period, heads, bottleneck_in, axis)
    return _cache[key]


def _solve(nodes: list[Node], period: int, heads: dict[str, str], bottleneck_in: str, axis: int) -> SizeRule | None:
    if period > MAX_PERIOD:
        return None

    def _legal(nodes: list[Node], n: int) -> dict[str, int] | None:
        return _legal_on(nodes, n, axis)

    residues = [r for r in range(period) if _legal(nodes, period * _FAR + r) is not None]
    if period > 1 and len(residues) == period:  # pooling that floors, with the up-sampled feature padded
        return _solve(nodes, 1, heads, bottleneck_in, axis)
    step = residues[1] - residues[0] if len(residues) > 1 else period
    if step < period and period % step == 0 and residues == list(range(residues[0], period, step)):
        # a pooling counted in the period that a coarser one already tiles (an rsu block's inside the
        # decoder's level 1): the legal sizes are one progression of a finer period
        return _solve(nodes, step, heads, bottleneck_in, axis)
    if len(residues) != 1:
        return None
    r = residues[0]
    lo, hi = 0, _FAR  # hi is legal; find the smallest legal k with n = P*k + r
    while lo < hi:
        mid = (lo + hi) // 2
        if _legal(nodes, period * mid + r) is not None:
            hi = mid
        else:
            lo = mid + 1
    n0 = period * lo + r
    first, second = _legal(nodes, n0), _legal(nodes, n0 + period)
    if first is None or second is None or _legal(nodes, n0 + 2 * period) is None:
        return None  # legality is not monotone in k: no single progression describes it
    k0 = first[bottleneck_in]
    outputs = {}
    for head, layer in heads.items():
        scale = Fraction(second[layer] - first[layer], period)
        outputs[head] = (scale, first[layer] - scale * n0)
    return SizeRule(period=period, offset=n0 - period * k0, k_min=k0, outputs=outputs)
