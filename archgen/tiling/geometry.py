"""What tiling needs to know of a network, from its plan alone (pure Python): the heads' scales and
shifts per axis, the period tile offsets must be multiples of, the legal sizes, and whether tiles
stitch exactly (every layer local and blind to where a tile ends) or which layers read the whole map.
Also cropping labels to a head's output, from the same geometry."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

from archgen.errors import ArchgenError, PlanError, did_you_mean
from archgen.kinds import Locality, kind_of
from archgen.planner.build import AXIS_NAMES
from archgen.planner.ir import Plan, SizeRule


class TilingError(ArchgenError):
    """An image or label array does not fit the model (rank, channels or spatial size)."""




# --------------------------------------------------------------------------------------------
# What tiling needs to know of a network (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Head:
    """One model output. On spatial axis ``a`` its size is ``scale[a] * n + shift[a]`` for an input
    of ``n`` (axes differ where the network down-samples them differently)."""

    name: str
    scale: tuple[Fraction, ...]
    shift: tuple[Fraction, ...]

    @property
    def full_resolution(self) -> bool:
        return all(s == 1 for s in self.scale)

    def stitchable(self, axis: int) -> bool:
        """Full resolution on ``axis``, or coarser with no border lost (then pixel ``i`` covers
        ``r*i .. r*i+r-1``)."""
        return self.scale[axis] == 1 or self.shift[axis] == 0

    def margin(self, axis: int) -> int:
        """Input pixels a stitchable head loses on ``axis`` (0 where padding is ``same``)."""
        return int(-self.shift[axis]) if self.scale[axis] == 1 else 0

    def split(self, axis: int) -> tuple[int, int]:
        """The margin as (before, after): the odd pixel at the end, as the planner's centre crops."""
        before = self.margin(axis) // 2
        return before, self.margin(axis) - before

    def size(self, n: int, axis: int) -> int:
        return int(self.scale[axis] * n + self.shift[axis])

    def scale_text(self) -> str:
        texts = {_fraction_text(s) for s in self.scale}
        return texts.pop() if len(texts) == 1 else "(" + ", ".join(_fraction_text(s) for s in self.scale) + ")"


@dataclass(frozen=True)
class Geometry:
    """Sizes and alignment of a network, per spatial axis.

    ``period`` is the product of the down-sampling factors on each axis. ``fixed`` holds the
    model's input size per spatial axis, None where it takes any legal size (then ``rules`` says
    which, one per axis). ``exact`` is False when some layer zero-pads, interpolates or
    reads the whole map, so that a tile's output near its border differs from a pass over a
    larger input. ``whole_map`` names the layers that read the whole map (instance and group
    norm, squeeze-and-excitation, self-attention, position embeddings): with them every output
    pixel depends on the whole tile, so only one pass over the whole (mirror-padded) image is
    exact, and anything else is approximate and said so.
    """

    ndim: int
    channels: int | None
    period: tuple[int, ...]
    heads: tuple[Head, ...]  # in the model's output order
    fixed: tuple[int | None, ...]
    rules: tuple[SizeRule | None, ...]
    exact: bool
    whole_map: tuple[str, ...] = ()  # "name (what it is)" of each layer that reads the whole map
    pixel_elements: float | None = None  # values all layers hold together, per input pixel (None: unknown)
    widest_pixel_elements: float | None = None  # the most values one layer holds, per input pixel: a pass needs
    # at least that much (None: unknown)

    def head(self, name: str | None) -> Head:
        """The head called ``name`` (``head_<name>`` accepted too); the first head for None."""
        if name is None:
            return self.heads[0]
        for head in self.heads:
            if name in (head.name, f"head_{head.name}") or head.name == f"head_{name}":
                return head
        names = [h.name for h in self.heads]
        raise PlanError(f"no such head; the model has {', '.join(names)}{did_you_mean(name, names)}",
                        path="head", value=name)


def plan_geometry(plan: Plan) -> Geometry:
    """The geometry of a planned network (its legal-size rules, else its fixed shapes)."""
    fixed = tuple(plan.input_shape[:-1])
    ndim = plan.ndim
    rules = tuple(plan.axis_sizes) if len(plan.axis_sizes) == ndim else (plan.sizes,) * ndim
    if all(rule is not None for rule in rules):
        heads = tuple(Head(name, *zip(*(rule.outputs[name] for rule in rules))) for name in plan.outputs)
        period = tuple(rule.period for rule in rules)
    else:  # no rule was derived: make_plan then requires every size fixed
        rules = (None,) * ndim
        heads = tuple(static_head(name, fixed, plan.output_shapes[name][:-1], _plan_head_scale(plan, layer, ndim))
                      for name, layer in plan.outputs.items())
        period = _plan_period(plan, ndim)
    whole_map = tuple(f"{layer.name} ({why})" for layer in plan.layers if (why := _plan_layer_reads_whole_map(layer)))
    exact = not whole_map and not any(_plan_layer_sees_edges(layer) for layer in plan.layers)
    return Geometry(ndim, plan.input_shape[-1], period, heads, fixed, rules, exact, whole_map,
                    *_plan_pixel_elements(plan, ndim))


def _plan_pixel_elements(plan: Plan, ndim: int) -> tuple[float, float]:
    """Values all the plan's layers hold together per input pixel (an upper bound of a pass's
    peak, for deciding whether a whole image fits in one pass), and the most one layer holds (a
    lower bound, for refusing a tile that cannot fit). Each layer's resolution follows its first
    input, as ``_plan_head_scale`` does."""
    scale: dict[str, float] = {}
    total = widest = 0.0
    for layer in plan.layers:
        parent = scale.get(layer.inputs[0], 1.0) if layer.inputs else 1.0
        scale[layer.name] = parent / math.prod(float(f) for f in _plan_layer_factor(layer.kind, layer.attrs, ndim))
        values = scale[layer.name] * (layer.shape[-1] or 1)
        total += values
        widest = max(widest, values)
    return total, widest


def static_head(name: str, sizes_in: Sequence[int], sizes_out: Sequence[int | None],
                scale: Sequence[Fraction]) -> Head:
    """A head from one input/output size pair per axis, given its resolution ``scale`` per axis."""
    if any(o is None for o in sizes_out):
        raise PlanError("has no fixed output size although the input size is fixed; cannot tile it",
                        path="head", value=name)
    shift = tuple(Fraction(o) - s * n for n, o, s in zip(sizes_in, sizes_out, scale))
    return Head(name, tuple(scale), shift)


def _plan_layer_factor(kind: str, attrs: dict, ndim: int) -> tuple[Fraction, ...]:
    """How much a layer divides the resolution on each axis (``LayerKind.factor``)."""
    return kind_of(kind).factor(attrs, ndim)


def _plan_period(plan: Plan, ndim: int) -> tuple[int, ...]:
    """Product of all down-sampling factors per axis (each level down-samples once)."""
    factors = [_plan_layer_factor(layer.kind, layer.attrs, ndim) for layer in plan.layers]
    return tuple(int(math.prod(f[axis] for f in factors if f[axis] > 1)) for axis in range(ndim))


def _plan_head_scale(plan: Plan, layer_name: str, ndim: int) -> tuple[Fraction, ...]:
    """A head's resolution per axis relative to the input, following first inputs back to the input."""
    factor, layer = [Fraction(1)] * ndim, plan.layer(layer_name)
    while layer.inputs:
        factor = [a * b for a, b in zip(factor, _plan_layer_factor(layer.kind, layer.attrs, ndim))]
        layer = plan.layer(layer.inputs[0])
    return tuple(1 / f for f in factor)


def _plan_layer_reads_whole_map(layer) -> str:
    """What makes every output pixel of this layer depend on the whole map ("" when nothing does)."""
    locality, why = kind_of(layer.kind).locality(layer.attrs)
    return why if locality is Locality.WHOLE_MAP else ""


def _plan_layer_sees_edges(layer) -> bool:
    """Whether this layer's output near a tile border depends on where the tile ends."""
    return kind_of(layer.kind).sees_edges(layer.attrs)


def output_margins(plan: Plan, head: str | None = None) -> tuple[tuple[int, int], ...]:
    """Input pixels a full-resolution head loses per spatial axis, as ``(before, after)``.

    ``((0, 0), (0, 0))`` for ``padding: same``; ``((92, 92), (92, 92))`` for the 2015 U-Net.
    """
    chosen = _full_resolution_head(plan_geometry(plan), head)
    return tuple(chosen.split(axis) for axis in range(plan.ndim))


def _full_resolution_head(geo: Geometry, name: str | None) -> Head:
    head = geo.head(name)
    if not head.full_resolution:
        raise PlanError(f"is at {head.scale_text()} resolution; labels are cropped for full-resolution "
                        f"heads (down-sample them for this one)", path="head", value=head.name)
    return head


def _fraction_text(scale: Fraction) -> str:
    return f"1/{1 / scale}" if scale.numerator == 1 and scale != 1 else str(scale)


# --------------------------------------------------------------------------------------------
# Cropping labels (pure, works on anything that slices like NumPy)
# --------------------------------------------------------------------------------------------


def crop_to_output(labels: Any, plan: Plan, *, head: str | None = None, channel_axis: bool = True) -> Any:
    """The centre of ``labels`` that lines up with the model's output for an input of that size.

    ``labels`` is shaped like the model's input grid: ``(..., *spatial, C)`` with any leading
    axes (a batch, or none), or ``(..., *spatial)`` with ``channel_axis=False``. Each spatial size
    must be one the model takes (its fixed size, or a legal size where it is free). The result
    keeps every other axis and has the output's spatial size: ``m // 2`` pixels are cut before
    and the rest after, where ``m`` is the input size minus the output size, exactly where the
    network's centre crops put its output. Works on NumPy arrays, TF tensors and anything that
    supports ``x[..., a:b, :]``. ``head`` picks a full-resolution head (default the first).
    """
    geo = plan_geometry(plan)
    chosen = _full_resolution_head(geo, head)
    shape = tuple(labels.shape)
    trailing = 1 if channel_axis else 0
    if len(shape) < geo.ndim + trailing:
        layout = "(..., *spatial, C)" if channel_axis else "(..., *spatial)"
        raise TilingError(f"has {len(shape)} axes; a {geo.ndim}D model's labels are {layout}",
                          path="labels", value=list(shape))
    spatial = shape[len(shape) - trailing - geo.ndim:len(shape) - trailing]
    for axis, n in enumerate(spatial):
        if n is not None:  # a symbolic tensor may not know its size
            check_input_size(geo, axis, int(n), "labels")
    # negative stops: no size needed
    centre = [slice(before, -after if after else None) for before, after in map(chosen.split, range(geo.ndim))]
    return labels[(Ellipsis, *centre, *([slice(None)] if channel_axis else []))]


def check_input_size(geo: Geometry, axis: int, n: int, what: str) -> None:
    """Refuse a size the model cannot take on ``axis``."""
    name = AXIS_NAMES[geo.ndim][axis]
    fixed = geo.fixed[axis]
    if fixed is not None:
        if n != fixed:
            raise TilingError(f"is {n} on axis {name}, but the model takes only {fixed} there",
                              path=what, value=n)
        return
    rule = geo.rules[axis]
    if rule is not None and not rule.is_legal(n):
        nearest = ", ".join(str(m) for m in rule.nearest(n))
        raise TilingError(f"is {n} on axis {name}, which the model cannot take", path=what, value=n,
                          hint=f"legal sizes: {rule.describe(name)}; nearest: {nearest}")


# --------------------------------------------------------------------------------------------
# Mirror padding (pure NumPy)
# --------------------------------------------------------------------------------------------
