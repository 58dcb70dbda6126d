"""Overlap-tile prediction for images of any size, and cropping labels to a model's output.

A valid-padding U-Net maps ``n`` input pixels to ``n - m`` output pixels on every axis (``m``, the
margin, is 184 for the 2015 U-Net: 572 -> 388). Ronneberger et al. predict a large image tile by
tile and supply the missing context at the image border by mirroring the image (their Fig. 2).
``predict_tiled`` does that for any image size, 1D, 2D or 3D:

* the image is mirror-padded by the margin: ``m // 2`` before, the rest after, because the
  planner puts the odd pixel of every centre crop at the end, so that is where the output sits;
* tiles of a legal input size are cut at offsets that are multiples of the network's period
  ``P`` (the product of its down-sampling factors), so that pooling sees the same grid in every
  tile; for a network with no zero padding inside (valid padding) the stitched result then
  equals one pass over the whole padded image, up to float rounding;
* a network that zero-pads inside (``padding: same``) sees the tile border in every tile, so its
  tiles overlap and are blended with a Gaussian weight (as nnU-Net does); where one legal tile
  covers the whole image it is predicted in one pass.

Shape contract (channels last everywhere, ``ndim`` = 1, 2 or 3 spatial axes):

* image: ``(*spatial, C)`` or ``(B, *spatial, C)``; each head's result has the same leading
  axes, the image's own spatial size, and the head's channels: ``(*spatial, K)`` /
  ``(B, *spatial, K)``. A head at ``1/r`` resolution (deep supervision) gets ``ceil(size / r)``
  pixels per axis, its pixel ``i`` covering image pixels ``r*i .. r*i + r - 1``.
* labels for ``crop_to_output``: ``(..., *spatial, C)`` (any leading axes, e.g. a batch), or
  ``(..., *spatial)`` with ``channel_axis=False``.

The planning part (geometry, layouts, mirror padding, cropping) is pure Python and NumPy; Keras
is imported only by the functions that load or run a model.
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from archgen.errors import ArchgenError, PlanError, did_you_mean
from archgen.kinds import Locality, kind_of
from archgen.planner.build import AXIS_NAMES
from archgen.planner.ir import Plan, SizeRule


class TilingError(ArchgenError):
    """An image or label array does not fit the model (rank, channels or spatial size)."""


DEFAULT_MAX_TILE = {1: 16384, 2: 512, 3: 128}
"""Largest tile (input pixels per axis) chosen for a model that takes any legal size;
``tile_size`` overrides it. A model saved with a fixed input size is always tiled at that size."""

BLEND_SIGMA = 1 / 8  # Gaussian weight's sigma as a fraction of the tile output (nnU-Net's value)
BLEND_FLOOR = 1e-3  # smallest weight, so every output pixel has a well-defined average


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
                    _plan_pixel_elements(plan, ndim))


def _plan_pixel_elements(plan: Plan, ndim: int) -> float:
    """Values all the plan's layers hold together per input pixel: an upper bound of a pass's
    peak, for deciding whether a whole image fits in one pass. Each layer's resolution follows
    its first input, as ``_plan_head_scale`` does."""
    scale: dict[str, float] = {}
    total = 0.0
    for layer in plan.layers:
        parent = scale.get(layer.inputs[0], 1.0) if layer.inputs else 1.0
        scale[layer.name] = parent / math.prod(float(f) for f in _plan_layer_factor(layer.kind, layer.attrs, ndim))
        total += scale[layer.name] * (layer.shape[-1] or 1)
    return total


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


def _each_axis(value, ndim: int = 3) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


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
# Reading a Keras model (imports Keras lazily)
# --------------------------------------------------------------------------------------------


def load_model(path: str | os.PathLike):
    """The model in a ``.keras`` file, checked by ``archgen.model_file`` before Keras reads it."""
    from archgen.model_file import load_model as load_checked

    return load_checked(path)


def output_names(model) -> list[str]:
    """The model's output names in output order (archgen names them after the heads)."""
    names = getattr(model, "output_names", None)
    if names and len(names) == len(model.outputs):
        return list(names)
    return [tensor._keras_history[0].name for tensor in model.outputs]


def model_geometry(model) -> Geometry:
    """The geometry of a Keras model alone: possible only with a fixed input size.

    The period is the product of the down-sampling strides of all layers, and a head's
    resolution comes from following first inputs back to the input (as archgen lays out a
    U-Net: encoder, bottleneck, then each decoder level's up-sampling first).
    """
    shape = tuple(model.inputs[0].shape)
    ndim = len(shape) - 2
    fixed = tuple(shape[1:-1])
    if ndim not in AXIS_NAMES:
        raise PlanError(f"has {ndim} spatial axes; tiling handles 1, 2 or 3", path="model", value=list(shape))
    if any(n is None for n in fixed):
        raise PlanError("takes any legal input size, and which sizes are legal is not stored in the model; "
                        "pass plan= or config= (archgen predict --config CONFIG)", path="model",
                        value=["?" if n is None else n for n in shape[1:]])
    producers = {id(layer.output): layer for layer in model.layers}
    factors = [_keras_layer_factor(layer, ndim) for layer in model.layers]
    period = tuple(int(math.prod(f[axis] for f in factors if f[axis] > 1)) for axis in range(ndim))
    heads = []
    for name, tensor in zip(output_names(model), model.outputs):
        scale = tuple(1 / f for f in _keras_chain_factor(tensor, producers, len(model.layers), ndim))
        heads.append(static_head(name, fixed, tuple(tensor.shape[1:-1]), scale))
    whole_map = tuple(f"{layer.name} ({why})" for layer in model.layers if (why := _keras_layer_reads_whole_map(layer)))
    exact = not whole_map and not any(_keras_layer_sees_edges(layer) for layer in model.layers)
    return Geometry(ndim, shape[-1], period, tuple(heads), fixed, (None,) * ndim, exact, whole_map)


def _keras_layer_reads_whole_map(layer) -> str:
    cls = type(layer).__name__
    if cls == "GroupNormalization":
        return "instance or group norm: statistics over the whole map"
    if cls.startswith("GlobalAveragePooling"):
        return "squeeze-and-excitation: the mean of the whole map"
    if cls == "MultiHeadAttention":
        return "self-attention: every position attends to every other"
    if cls == "PositionEmbedding":
        return "position embedding: depends on where in the map a pixel is"
    if cls == "WindowAttention":
        return "window attention: its windows, shifts and padding are laid out over the whole map"
    if cls == "LayerNormalization" and tuple(_each_axis(layer.axis, 1)) not in ((-1,), (len(layer.input.shape) - 1,)):
        return "layer norm over spatial axes"
    if cls in ("Functional", "Sequential"):  # a nested model (a backbone): what any of its layers reads
        return next((why for inner in layer.layers if (why := _keras_layer_reads_whole_map(inner))), "")
    return ""


def _keras_layer_factor(layer, ndim: int) -> tuple[Fraction, ...]:
    """How much a Keras layer divides the resolution on each axis."""
    cls = type(layer).__name__
    if cls.startswith(("MaxPooling", "AveragePooling")):
        return tuple(Fraction(int(s)) for s in _each_axis(layer.strides, ndim))
    if cls.startswith("Conv") and cls.endswith("Transpose"):
        return tuple(Fraction(1, int(s)) for s in _each_axis(layer.strides, ndim))
    if cls.startswith("Conv"):
        return tuple(Fraction(int(s)) for s in _each_axis(layer.strides, ndim))
    if cls.startswith("UpSampling"):
        return tuple(Fraction(1, int(s)) for s in _each_axis(layer.size, ndim))
    if cls == "PatchMerge":
        return (Fraction(2),) * ndim
    return (Fraction(1),) * ndim


def _keras_chain_factor(tensor, producers: dict, limit: int, ndim: int) -> tuple[Fraction, ...]:
    factor = [Fraction(1)] * ndim
    for _ in range(limit + 1):
        layer = producers.get(id(tensor))
        if layer is None or type(layer).__name__ == "InputLayer":
            break
        factor = [a * b for a, b in zip(factor, _keras_layer_factor(layer, ndim))]
        inputs = layer.input
        tensor = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
    return tuple(factor)


def _keras_layer_sees_edges(layer) -> bool:
    cls = type(layer).__name__
    if cls in ("Functional", "Sequential"):  # a nested model (a backbone)
        return any(_keras_layer_sees_edges(inner) for inner in layer.layers)
    if cls.startswith(("ZeroPadding", "Resizing", "GroupNormalization")):
        return True
    if cls.startswith("UpSampling"):
        return getattr(layer, "interpolation", "nearest") != "nearest"
    if not cls.startswith("Conv"):
        return False
    ndim = len(layer.kernel_size)
    pairs = zip(layer.kernel_size, _each_axis(layer.strides, ndim), _each_axis(layer.dilation_rate, ndim))
    if cls.endswith("Transpose"):
        return any(k > s for k, s, _ in pairs)
    return layer.padding == "same" and any((k - 1) * d + 1 > s for k, s, d in pairs)


def fitted_geometry(plan: Plan, model) -> Geometry:
    """The plan's geometry, checked against the model, with the model's own fixed sizes."""
    geo = plan_geometry(plan)
    shape = tuple(model.inputs[0].shape)
    fixed = tuple(shape[1:-1])
    problem = None
    if len(fixed) != geo.ndim:
        problem = f"the model has {len(fixed)} spatial axes, the plan {geo.ndim}"
    elif shape[-1] != geo.channels:
        problem = f"the model takes {shape[-1]} input channels, the plan {geo.channels}"
    elif len(model.outputs) != len(geo.heads):
        problem = f"the model has {len(model.outputs)} outputs, the plan {len(geo.heads)} heads"
    elif any(n is None and planned is not None for n, planned in zip(fixed, geo.fixed)):
        problem = "the model takes any size where the plan fixes one; plan it with a free size"
    elif any(rule is None for rule in geo.rules) and fixed != geo.fixed:
        problem = f"the model takes {list(fixed)}, the plan {list(geo.fixed)}"
    elif model.count_params() != plan.total_params:  # e.g. built with other filters or depth
        problem = f"the model has {model.count_params():,} parameters, the plan {plan.total_params:,}"
    else:
        problem = _output_mismatch(plan, geo, model, fixed)
    if problem:
        raise PlanError(f"the plan does not describe this model: {problem}", path="plan", value=plan.name)
    return Geometry(geo.ndim, geo.channels, geo.period, geo.heads, fixed, geo.rules, geo.exact, geo.whole_map,
                    geo.pixel_elements)


def _output_mismatch(plan: Plan, geo: Geometry, model, fixed: tuple[int | None, ...]) -> str | None:
    for head, tensor in zip(geo.heads, model.outputs):
        out = tuple(tensor.shape[1:])
        planned = plan.output_shapes[head.name][-1]
        if out[-1] != planned:
            return f"output {head.name} has {out[-1]} channels in the model, {planned} in the plan"
        for axis, (n, o) in enumerate(zip(fixed, out[:-1])):
            if n is not None and o is not None and head.size(n, axis) != o:
                return (f"output {head.name} is {o} for an input of {n} in the model, {head.size(n, axis)} "
                        f"in the plan")
    return None


def plan_for_model(config: str | os.PathLike, model, overrides: Sequence[str] = ()) -> Plan:
    """Plan ``config`` (with ``overrides``) at the model's own input shape."""
    return plan_for_shape(config, tuple(model.inputs[0].shape[1:]), overrides)


def plan_for_shape(config: str | os.PathLike, shape: Sequence[int | None], overrides: Sequence[str] = ()) -> Plan:
    """Plan ``config`` (with ``overrides``) at input ``shape`` = ``(*spatial, C)``, None for a free size."""
    from archgen.planner import make_plan
    from archgen.config import load_spec

    text = "[" + ",".join("null" if n is None else str(int(n)) for n in shape) + "]"
    return make_plan(load_spec(config, [*overrides, f"input.shape={text}"]))


# --------------------------------------------------------------------------------------------
# Overlap-tile prediction
# --------------------------------------------------------------------------------------------


def predict_tiled(model_or_path: Any, image: Any, *, plan: Plan | None = None, config: str | os.PathLike | None = None,
                  overrides: Sequence[str] = (), batch_size: int = 4, tile_size: int | Sequence[int] | None = None,
                  overlap: float = 0.5, heads: Sequence[str] | None = None,
                  max_tile: int | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """Predict an image of any size tile by tile (overlap-tile; see the module's docstring).

    ``model_or_path``: a Keras model or a ``.keras`` file (loaded with ``safe_mode=True``).
    ``image``: ``(*spatial, C)`` or ``(B, *spatial, C)``, channels last, any spatial size
    (mirror-padded as needed, also when smaller than the margin).
    ``plan`` / ``config`` (+ ``overrides``): where the model takes any legal input size, what the
    legal sizes are; without them the model must have a fixed input size, and the margin,
    period and head resolutions are read from its layers. ``tile_size``: tile input size (one
    per axis, or one for all) for a free input size; by default the smallest legal size that
    covers the image in one tile, else the largest up to ``max_tile`` (``DEFAULT_MAX_TILE``).
    ``overlap``: for networks that zero-pad inside, the fraction of a tile's output its
    neighbour overlaps and blends with. ``heads``: the heads to predict (default all).

    Returns the prediction, float32, with the image's leading axes and spatial size: an array
    when the model has one output, else ``{head: array}`` for the heads asked for. A coarser head
    (deep supervision) is stitched at its own resolution, ``ceil(size / r)`` pixels per axis,
    where it loses no border (padding ``same``); a coarser head of a valid-padding network is
    refused (its grid does not line up with the image's): pass ``heads`` without it.
    """
    check_options(batch_size, overlap)
    model = load_model(model_or_path) if isinstance(model_or_path, (str, os.PathLike)) else model_or_path
    if plan is None and config is not None:
        plan = plan_for_model(config, model, overrides)
    geo = model_geometry(model) if plan is None else fitted_geometry(plan, model)
    chosen = _select_heads(geo, heads)
    check_heads_stitchable([head for _, head in chosen], geo.ndim)
    x, batched = as_image_batch(image, geo)
    tiles = _per_axis(tile_size, geo.ndim)
    heads_chosen = [h for _, h in chosen]
    one_pass = None
    if geo.whole_map and tile_size is None and max_tile is None:
        one_pass = one_pass_size(geo, heads_chosen, x.shape[1:-1])
        max_tile = max(one_pass[0]) if one_pass[1] else None
    layouts = [layout_axis(geo, heads_chosen, axis, x.shape[1 + axis], tile_size=tiles[axis],
                           overlap=overlap, max_tile=max_tile) for axis in range(geo.ndim)]
    if geo.whole_map:
        _warn_if_approximate(geo, heads_chosen, layouts, one_pass)
    stitched = _tile_and_stitch(model, x, geo, chosen, layouts, batch_size)
    results = {head.name: out if batched else out[0] for (_, head), out in zip(chosen, stitched)}
    return next(iter(results.values())) if len(geo.heads) == 1 else results


class ApproximateTilingWarning(UserWarning):
    """A network with a layer that reads the whole map was not predicted in one exact pass."""


def one_pass_size(geo: Geometry, heads: Sequence[Head], spatial: Sequence[int]) -> tuple[list[int], bool]:
    """The smallest input covering the whole (mirror-padded) image on every axis, and whether one
    pass at that size fits in half the memory this machine has free."""
    from archgen.model_file import available_memory

    sizes = []
    for axis, n in enumerate(spatial):
        need = n + sum(max(h.split(axis)[side] for h in heads) for side in (0, 1))
        rule = geo.rules[axis]
        sizes.append(geo.fixed[axis] if geo.fixed[axis] is not None else legal_at_least(rule, need) if rule else need)
    if geo.pixel_elements is None or any(f is not None for f in geo.fixed):
        return sizes, False  # a fixed size is the tile size anyway
    need_bytes = math.prod(sizes) * geo.pixel_elements * 4
    return sizes, need_bytes <= available_memory() / 2


def _warn_if_approximate(geo: Geometry, heads: Sequence[Head], layouts: Sequence[AxisLayout],
                         one_pass: tuple[list[int], bool] | None) -> None:
    """Say so when a network that reads the whole map is not predicted in one pass over exactly
    the mirror-padded image: more tiles, or padding beyond the margins to reach a legal size."""
    import warnings

    tiles = math.prod(len(lay.starts) for lay in layouts)
    needed = [lay.size + sum(max(h.split(axis)[side] for h in heads) for side in (0, 1))
              for axis, lay in enumerate(layouts)]
    padded = [lay.padded for lay in layouts]
    if tiles == 1 and padded == needed:
        return
    layers = ", ".join(geo.whole_map[:2]) + (f" and {len(geo.whole_map) - 2} more" if len(geo.whole_map) > 2 else "")
    if tiles > 1:
        how = f"the image is predicted in {tiles} overlapping tiles, blended"
        if one_pass is not None and not one_pass[1] and geo.pixel_elements is not None:
            how += " (one pass would not fit in half the memory this machine has free)"
    else:
        how = (f"the image is mirror-padded beyond its margins, from {'x'.join(map(str, needed))} to "
               f"{'x'.join(map(str, padded))}, to a size the model takes")
    warnings.warn(ApproximateTilingWarning(f"{layers} read(s) the whole map and {how}: the result is "
                                           "approximate, not equal to one pass over the image"), stacklevel=3)


def check_options(batch_size: int, overlap: float) -> None:
    """Refuse a batch size below 1 or an overlap outside [0, 1)."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ArchgenError("must be a whole number of at least 1", path="batch_size", value=batch_size)
    if not 0 <= overlap < 1:
        raise ArchgenError("must be at least 0 and below 1 (a fraction of a tile)", path="overlap", value=overlap)


def _per_axis(value: int | Sequence[int] | None, ndim: int) -> list[int | None]:
    if value is None or isinstance(value, int):
        return [value] * ndim
    values = list(value)
    if len(values) != ndim:
        raise ArchgenError(f"has {len(values)} entries; a {ndim}D model needs one, or {ndim}", path="tile_size",
                           value=values)
    return values


def _select_heads(geo: Geometry, names: Sequence[str] | None) -> list[tuple[int, Head]]:
    """(output index, head) of the heads asked for, in the model's order."""
    if names is None:
        return list(enumerate(geo.heads))
    if isinstance(names, str) or not names:
        raise ArchgenError("expected a non-empty list of head names", path="heads", value=names)
    wanted = {geo.head(name).name for name in names}
    return [(i, head) for i, head in enumerate(geo.heads) if head.name in wanted]


def as_image_batch(image: Any, geo: Geometry) -> tuple[np.ndarray, bool]:
    """The image as float32 ``(B, *spatial, C)``, and whether it came with a batch axis."""
    array = np.asarray(image)
    batched = check_image(array.shape, array.dtype, geo.ndim, geo.channels)
    with np.errstate(over="ignore"):
        array = array.astype(np.float32, copy=False)
    check_finite(array)  # after the cast: a float64 beyond float32's range is infinite here
    return (array if batched else array[None]), batched


def check_finite(array: np.ndarray, chunk: int = 1 << 22) -> None:
    """Refuse NaN and infinite values: the model would spread them over every tile they touch.
    Read in chunks, so a memory-mapped image is never loaded whole."""
    if array.dtype.kind != "f":
        return
    flat = array.reshape(-1)
    for start in range(0, flat.size, chunk):
        bad = ~np.isfinite(flat[start:start + chunk])
        if bad.any():
            count = int(bad.sum())
            index = [int(i) for i in np.unravel_index(start + int(np.argmax(bad)), array.shape)]
            raise TilingError(f"holds NaN or infinite values ({count:,} in the first chunk with any, the first at "
                              f"{index}); replace them first (e.g. numpy.nan_to_num)", path="image",
                              value=list(array.shape))


def check_image(shape: Sequence[int], dtype: Any, ndim: int, channels: int | None) -> bool:
    """Refuse an image a model of ``ndim`` spatial axes and ``channels`` cannot take; return
    whether it has a batch axis (``(B, *spatial, C)``) or not (``(*spatial, C)``)."""
    shape = tuple(shape)
    if np.dtype(dtype).kind not in "biuf":
        raise TilingError(f"holds {dtype}; expected numbers", path="image", value=list(shape))
    if len(shape) not in (ndim + 1, ndim + 2):
        raise TilingError(f"has {len(shape)} axes; a {ndim}D model takes (*spatial, C) = {ndim + 1} axes or "
                          f"(batch, *spatial, C) = {ndim + 2} (add a channel axis with image[..., None])",
                          path="image", value=list(shape))
    if channels is not None and shape[-1] != channels:
        raise TilingError(f"has {shape[-1]} channels (last axis); the model takes {channels}",
                          path="image", value=list(shape))
    if 0 in shape[:-1]:
        raise TilingError("is empty", path="image", value=list(shape))
    return len(shape) == ndim + 2


def _run_model(model, batch: np.ndarray) -> list[np.ndarray]:
    try:
        ys = model.predict_on_batch(batch)
    except Exception as exc:  # a Keras or back-end failure: one line naming the batch
        raise PlanError(f"the model failed on a batch of tiles {list(batch.shape)}: "
                        f"{' '.join(str(exc).split())[:300]}", path="model") from None
    return [np.asarray(y) for y in (ys if isinstance(ys, (list, tuple)) else [ys])]


def _tile_and_stitch(model, x: np.ndarray, geo: Geometry, chosen: list[tuple[int, Head]],
                     layouts: list[AxisLayout], batch_size: int) -> list[np.ndarray]:
    """Predict every tile of every image in ``x`` and put each head's outputs in place.

    A head's output of a tile at offset ``t`` lands at ``t * scale`` in the head's output of the
    padded image; the image's part of that output starts at ``pad_before - margin_before``.
    """
    padded = mirror_pad(x, [(lay.pad_before, lay.pad_after) for lay in layouts])
    grid = list(itertools.product(*(lay.starts for lay in layouts)))
    blend = not geo.exact and len(grid) > 1
    sums: list[Any] = [None] * len(chosen)
    windows: list[Any] = [None] * len(chosen)
    outputs: list[Any] = [None] * len(chosen)
    jobs = [(b, starts) for b in range(x.shape[0]) for starts in grid]
    for first in range(0, len(jobs), batch_size):
        chunk = jobs[first:first + batch_size]
        tiles = np.stack([padded[(b, *(slice(t, t + lay.tile) for t, lay in zip(starts, layouts)))]
                          for b, starts in chunk])
        ys = _run_model(model, tiles)
        for k, (index, head) in enumerate(chosen):
            y = ys[index]
            if outputs[k] is None:
                full = [head.size(lay.padded, axis) for axis, lay in enumerate(layouts)]
                outputs[k] = np.zeros((x.shape[0], *full, y.shape[-1]), np.float32)
                if blend:
                    windows[k] = _window(y.shape[1:-1])
                    sums[k] = _weight_sums(full, grid, head, windows[k])
            for (b, starts), tile_out in zip(chunk, y):
                where = (b, *_placement(starts, head, tile_out.shape[:-1]))
                if blend:
                    outputs[k][where] += tile_out * windows[k]
                else:
                    outputs[k][where] = tile_out
    results = []
    for k, (_, head) in enumerate(chosen):
        out = outputs[k] / sums[k] if blend else outputs[k]
        results.append(out[(slice(None), *_image_part(head, layouts))])
    return results


def _window(shape: Sequence[int]) -> np.ndarray:
    """Separable blending weight over a tile output of ``shape``, with a trailing channel axis."""
    weight = np.ones((), np.float32)
    for length in shape:
        weight = np.multiply.outer(weight, blend_window(int(length)))
    return weight[..., None]


def _placement(starts: Sequence[int], head: Head, shape: Sequence[int]) -> tuple[slice, ...]:
    where = []
    for t, length, scale in zip(starts, shape, head.scale):
        at = Fraction(t) * scale
        assert at.denominator == 1, "tile offsets are multiples of the period"
        where.append(slice(int(at), int(at) + int(length)))
    return tuple(where)


def _weight_sums(full: Sequence[int], grid: Sequence[tuple[int, ...]], head: Head, window: np.ndarray) -> np.ndarray:
    sums = np.zeros((*full, 1), np.float32)
    for starts in grid:
        sums[_placement(starts, head, window.shape[:-1])] += window
    return sums


def _image_part(head: Head, layouts: Sequence[AxisLayout]) -> tuple[slice, ...]:
    """Where the image lies in a head's output of the padded image."""
    parts = []
    for axis, lay in enumerate(layouts):
        if head.scale[axis] == 1:
            start = lay.pad_before - head.split(axis)[0]
            parts.append(slice(start, start + lay.size))
        else:  # stitchable coarse heads come only with pad_before == 0
            parts.append(slice(0, math.ceil(lay.size * head.scale[axis])))
    return tuple(parts)
