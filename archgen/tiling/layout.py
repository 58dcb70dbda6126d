"""Where the tiles go (pure): mirror padding, the tiles' offsets on each axis, the blending weight."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from archgen.errors import PlanError
from archgen.planner.build import AXIS_NAMES
from archgen.planner.ir import SizeRule
from archgen.tiling.geometry import Geometry, Head

DEFAULT_MAX_TILE = {1: 16384, 2: 512, 3: 128}
"""Largest tile (input pixels per axis) chosen for a model that takes any legal size;
``tile_size`` overrides it. A model saved with a fixed input size is always tiled at that size."""

BLEND_SIGMA = 1 / 8  # Gaussian weight's sigma as a fraction of the tile output (nnU-Net's value)
BLEND_FLOOR = 1e-3  # smallest weight, so every output pixel has a well-defined average



def reflect_indices(size: int, before: int, after: int) -> np.ndarray:
    """Indices that mirror an axis of ``size`` by ``before``/``after`` pixels.

    NumPy's ``reflect``: the edge pixel is not repeated (``0 1 2`` -> ``2 1 | 0 1 2 | 1 0``), and
    the reflection repeats as often as needed, so any padding works however small the axis; an
    axis of one pixel repeats that pixel.
    """
    index = np.arange(-before, size + after)
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    index = np.mod(index, period)
    return np.where(index < size, index, period - index)


def mirror_pad(array: np.ndarray, pads: Sequence[tuple[int, int]]) -> np.ndarray:
    """Mirror-pad the ``len(pads)`` axes before the last (``(..., *spatial, C)``) by ``(before, after)``."""
    first = array.ndim - 1 - len(pads)
    for offset, (before, after) in enumerate(pads):
        axis = first + offset
        if before or after:
            array = np.take(array, reflect_indices(array.shape[axis], before, after), axis=axis)
    return array


# --------------------------------------------------------------------------------------------
# Where the tiles go (pure)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AxisLayout:
    """How one spatial axis is cut. ``starts`` are tile offsets in the padded image, each a
    multiple of the period; ``padded`` = ``pad_before`` + image size + ``pad_after``."""

    size: int
    tile: int
    pad_before: int
    padded: int
    starts: tuple[int, ...]

    @property
    def pad_after(self) -> int:
        return self.padded - self.size - self.pad_before


def layout_axis(geo: Geometry, heads: Sequence[Head], axis: int, size: int, *, tile_size: int | None = None,
                overlap: float = 0.5, max_tile: int | None = None) -> AxisLayout:
    """Tiles covering an image axis of ``size`` pixels so that every head's output covers it.

    Exact networks: tiles advance by the largest multiple of the period that their output
    spans (neighbours overlap by the rest, with equal values there). Others: tiles advance by
    about ``1 - overlap`` of their output, again a multiple of the period, the last one flush
    with the padded end.
    """
    before = max(h.split(axis)[0] for h in heads)
    after = max(h.split(axis)[1] for h in heads)
    widest = max(h.margin(axis) for h in heads)
    need = size + before + after  # padded length whose outputs cover the image
    tile = choose_tile(geo, axis, need, widest, tile_size, max_tile)
    span = tile - widest  # input pixels every head has an output for, per tile
    p = geo.period[axis]
    if span < p:
        raise PlanError(f"a tile of {tile} gives {span} output pixels on axis {AXIS_NAMES[geo.ndim][axis]}, fewer "
                        f"than the period {p} that tile offsets must be multiples of; use a larger tile",
                        path="tile_size", value=tile)
    if geo.exact:
        stride = p * (span // p)
        starts = tuple(j * stride for j in range(1 + _ceil_div(max(0, need - tile), stride)))
        padded = starts[-1] + tile
    else:
        stride = max(p, p * math.floor(span * (1 - overlap) / p))
        padded = tile + p * _ceil_div(max(0, need - tile), p)
        starts = tuple(sorted(set(range(0, padded - tile, stride)) | {padded - tile}))
    return AxisLayout(size, tile, before, padded, starts)


def choose_tile(geo: Geometry, axis: int, need: int, widest: int, tile_size: int | None, max_tile: int | None) -> int:
    """The tile input size on ``axis``: the model's fixed size; else ``tile_size`` (checked); else
    the smallest legal size covering ``need`` in one tile, or the largest legal size up to the cap."""
    fixed = geo.fixed[axis]
    name = AXIS_NAMES[geo.ndim][axis]
    if fixed is not None:
        if tile_size is not None and tile_size != fixed:
            raise PlanError(f"the model takes only {fixed} on axis {name}", path="tile_size", value=tile_size)
        return fixed
    rule = geo.rules[axis]
    assert rule is not None, "a free input size always comes with a size rule"
    if tile_size is not None:
        if not rule.is_legal(tile_size):
            nearest = ", ".join(str(m) for m in rule.nearest(tile_size))
            raise PlanError(f"is not a legal input size on axis {name}", path="tile_size", value=tile_size,
                            hint=f"legal sizes: {rule.describe(name)}; nearest: {nearest}")
        return tile_size
    smallest = legal_at_least(rule, widest + geo.period[axis])
    cover = legal_at_least(rule, max(need, smallest))
    cap = max_tile or DEFAULT_MAX_TILE[geo.ndim]
    if cover <= cap:
        return cover
    return max(smallest, legal_at_most(rule, cap) or smallest)


def legal_at_least(rule: SizeRule, n: int) -> int:
    k = max(rule.k_min, _ceil_div(n - rule.offset, rule.period))
    return rule.period * k + rule.offset


def legal_at_most(rule: SizeRule, n: int) -> int | None:
    k = (n - rule.offset) // rule.period
    return rule.period * k + rule.offset if k >= rule.k_min else None


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def blend_window(length: int) -> np.ndarray:
    """A Gaussian weight over ``length`` output pixels: 1 at the centre, ``BLEND_FLOOR`` at least."""
    centre = (length - 1) / 2
    sigma = max(length * BLEND_SIGMA, 1e-6)
    window = np.exp(-0.5 * ((np.arange(length) - centre) / sigma) ** 2)
    return np.maximum(window, BLEND_FLOOR).astype(np.float32)


def check_heads_stitchable(heads: Sequence[Head], ndim: int) -> None:
    """Refuse heads whose tiles cannot be placed on the image's pixel grid exactly."""
    full = [h.name for h in heads if h.full_resolution]
    hint = f"predict the others with heads={full}" if full else ""
    for axis in range(ndim):
        for head in heads:
            if not head.stitchable(axis):
                raise PlanError(f"is at {head.scale_text()} resolution and loses pixels at its border (valid "
                                f"padding), so its tiles do not line up with the image's pixel grid", path="heads",
                                value=head.name, hint=hint)
        coarse = [h for h in heads if h.scale[axis] != 1]
        if coarse and any(h.margin(axis) for h in heads):
            raise PlanError(f"is at {coarse[0].scale_text()} resolution while another head loses a border: "
                            f"the mirror padding would shift its grid", path="heads", value=coarse[0].name,
                            hint=hint)


# --------------------------------------------------------------------------------------------
