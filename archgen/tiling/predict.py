"""Overlap-tile prediction: cut the mirror-padded image into tiles of a size the model takes, run
them in batches, and put each head's outputs in place (blended where tiles are not exact)."""

from __future__ import annotations

import itertools
import math
import os
from fractions import Fraction
from typing import Any, Sequence

import numpy as np

from archgen.errors import ArchgenError, PlanError
from archgen.planner.ir import Plan
from archgen.tiling.geometry import Geometry, Head, TilingError
from archgen.tiling.layout import (
    AxisLayout,
    blend_window,
    check_heads_stitchable,
    layout_axis,
    legal_at_least,
    mirror_pad,
)
from archgen.tiling.model import (
    fitted_geometry,
    load_model,
    model_geometry,
    plan_for_model,
)


def predict_tiled(model_or_path: Any, image: Any, *, plan: Plan | None = None, config: Any = None,
                  overrides: Sequence[str] = (), batch_size: int = 4, tile_size: int | Sequence[int] | None = None,
                  overlap: float = 0.5, heads: Sequence[str] | None = None,
                  max_tile: int | None = None) -> np.ndarray | dict[str, np.ndarray]:
    """Predict an image of any size tile by tile (overlap-tile; see the module's docstring).

    ``model_or_path``: a Keras model or a ``.keras`` file (loaded with ``safe_mode=True``).
    ``image``: ``(*spatial, C)`` or ``(B, *spatial, C)``, channels last, any spatial size
    (mirror-padded as needed, also when smaller than the margin).
    ``plan`` / ``config`` (a path, a mapping or a DictConfig, + ``overrides``): where the model
    takes any legal input size, what the legal sizes are; without them the model must have a fixed input size, and the margin,
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
    if plan is not None:
        check_tile_outputs(model, geo, chosen, [lay.tile for lay in layouts], plan.name)
    batch_size = check_run_memory(model, x.shape, geo, chosen, layouts, batch_size)
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
        if any(f is not None for f in geo.fixed):
            fixed = "x".join("any" if f is None else str(f) for f in geo.fixed)
            how += f" (the model takes a fixed {fixed} input)"
        elif one_pass is not None and not one_pass[1] and geo.pixel_elements is not None:
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
    if isinstance(value, (str, bytes)):  # list("16") would be ["1", "6"]
        raise ArchgenError("expected a whole number, or one per axis", path="tile_size", value=value)
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
            raise TilingError(f"holds NaN or infinite values as float32 ({count:,} in the first chunk with any, the "
                              f"first at {index}); replace them first (e.g. numpy.nan_to_num)", path="image",
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


def check_tile_outputs(model, geo: Geometry, chosen: Sequence[tuple[int, Head]], tile: Sequence[int],
                       plan_name: Any) -> None:
    """Refuse a plan whose outputs for a tile of size ``tile`` are not the model's: the model is run
    symbolically (no data) on one tile, and each head's size compared with what the plan says. A
    plan of other padding with the same parameter counts passes ``fitted_geometry`` (which sees
    only the model's free sizes), and would otherwise fail while the tiles are put in place."""
    from archgen.backend import import_keras

    keras = import_keras()
    shape = (1, *(int(n) for n in tile), geo.channels)
    try:
        spec = model.compute_output_spec(keras.KerasTensor(shape))
    except Exception as exc:  # the model cannot take the planned tile at all
        raise PlanError(f"the plan does not describe this model: the model cannot take a tile of "
                        f"{'x'.join(map(str, shape[1:]))}, a size the plan calls legal "
                        f"({' '.join(str(exc).split())[:200]})", path="plan", value=plan_name) from None
    outs = list(spec.values()) if isinstance(spec, dict) else list(spec) if isinstance(spec, (list, tuple)) else [spec]
    for index, head in chosen:
        if index >= len(outs):
            raise PlanError(f"the plan does not describe this model: it has {len(outs)} outputs, the plan "
                            f"{len(geo.heads)} heads", path="plan", value=plan_name)
        got = tuple(outs[index].shape[1:-1])
        want = tuple(int(head.size(n, axis)) for axis, n in enumerate(tile))
        if got != want:
            raise PlanError(f"the plan does not describe this model: for a tile of {'x'.join(map(str, tile))} "
                            f"the model's output {head.name} is {'x'.join(map(str, got))}, the plan's "
                            f"{'x'.join(map(str, want))} (built with other padding, crops or strides?)",
                            path="plan", value=plan_name)


def activation_bytes(model) -> int | None:
    """Bytes per sample of the largest set of layer outputs alive at once while ``model`` runs:
    layers in the order Keras runs them, each output held from its layer until the last layer that
    reads it (a model's outputs to the end), a nested model (a backbone) counted by its own peak.
    None where a size is not fixed (the model takes any size) or the graph cannot be read."""
    try:
        return _graph_peak(model, 0)
    except (AttributeError, TypeError, ValueError, KeyError):
        return None


def _graph_peak(model, depth: int) -> int | None:
    from archgen.compat.keras import calls_in_run_order

    calls = calls_in_run_order(model) if depth <= 64 else None
    if not calls:
        return None
    last: dict[int, int] = {}
    for i, (_, inputs, _) in enumerate(calls):
        for tensor in inputs:
            last[id(tensor)] = i
    for tensor in model.outputs:
        last[id(tensor)] = len(calls)
    live: dict[int, int] = {}
    peak = 0
    for i, (op, inputs, outputs) in enumerate(calls):
        sizes = [_tensor_bytes(tensor) for tensor in outputs]
        if any(size is None for size in sizes):
            return None
        own = sum(sizes)
        if op is not model and calls_in_run_order(op):  # a nested model: its own peak inside the call
            inner = _graph_peak(op, depth + 1)
            if inner is None:
                return None
            own = max(own, inner)
        peak = max(peak, sum(live.values()) + own)
        for tensor, size in zip(outputs, sizes):
            if last.get(id(tensor), -1) > i:
                live[id(tensor)] = size
        for tensor in inputs:
            if last.get(id(tensor)) == i:
                live.pop(id(tensor), None)
    return peak


def _tensor_bytes(tensor) -> int | None:
    """Bytes of one sample of a symbolic tensor (Python ints: no overflow), None where a size is free."""
    shape = tuple(tensor.shape)[1:]
    if any(not isinstance(n, int) for n in shape):
        return None
    try:
        itemsize = np.dtype(str(getattr(tensor, "dtype", "float32"))).itemsize
    except TypeError:
        itemsize = 4
    return math.prod(int(n) for n in shape) * max(itemsize, 1)


def check_run_memory(model, shape: Sequence[int], geo: Geometry, chosen: Sequence[tuple[int, Head]],
                     layouts: Sequence[AxisLayout], batch_size: int) -> int:
    """The batch size to run with: ``batch_size``, or fewer tiles a call where that many would not
    fit in the memory this machine has free. Refused (before anything is allocated) where the
    padded image, the stitched outputs and one tile's layer outputs do not fit: a fixed-size
    model's own (``activation_bytes``); for a free size, the plan's widest layer at the tile's
    size, the least a pass holds (a tile far larger than the image is the caller's choice, and
    runs where it fits)."""
    from archgen.model_file import available_memory

    if all(n is not None for n in geo.fixed):
        per_tile = activation_bytes(model) or 0
    else:
        per_tile = int(math.prod(lay.tile for lay in layouts) * (geo.widest_pixel_elements or 0) * 4)
    images = int(shape[0])
    jobs = images * math.prod(len(lay.starts) for lay in layouts)
    blend = not geo.exact and jobs > images
    padded = images * math.prod(int(lay.padded) for lay in layouts) * int(shape[-1]) * 4
    outputs = 0
    for index, head in chosen:
        full = math.prod(int(head.size(lay.padded, axis)) for axis, lay in enumerate(layouts))
        channels = model.outputs[index].shape[-1]
        channels = channels if isinstance(channels, int) else 1
        outputs += images * full * channels * 4 + (full * 4 if blend else 0)
    free = available_memory()
    held = padded + outputs
    if held + per_tile > free:
        tile = "x".join(str(lay.tile) for lay in layouts)
        raise PlanError(f"is too large to run here: the mirror-padded image and the prediction "
                        f"({held / 2**30:,.1f} GiB) and the layer outputs alive at once for one {tile} tile "
                        f"({per_tile / 2**30:,.1f} GiB) take {(held + per_tile) / 2**30:,.1f} GiB, more than the "
                        f"{free / 2**30:,.1f} GiB this machine has free", path="model",
                        value=getattr(model, "name", "model"))
    return max(1, min(batch_size, jobs, (free - held) // per_tile)) if per_tile else batch_size


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
