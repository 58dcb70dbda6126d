"""Changing the resolution without weights: up-sampling by a factor, resizing to a skip's size."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import floor

from archgen.kinds.base import (
    Attrs,
    KerasForm,
    LayerKind,
    axes_text,
    each_axis,
    keeps_nothing,
    known_params,
    no_flops,
    no_workspace,
    on,
    on_axis,
    ranked,
    window,
)


@dataclass(frozen=True)
class UpsampleAttrs(Attrs):
    factor: int | tuple[int, ...]
    interpolation: str  # "nearest" | "bilinear" | "linear"


@dataclass(frozen=True)
class ResizeAttrs(Attrs):
    """Resizing to the size of the layer it joins (``like``); ``size`` is solved by the planner."""

    size: tuple[int, ...] | None = None


def upsample_size(node, sizes, amounts, axis, n_input) -> int:
    return sizes[node.inputs[0]] * on(node.attrs["factor"], axis)


def upsample_span(layer, in_size, axis):
    a = on_axis(layer.attrs, axis)
    f = a["factor"]
    if a["interpolation"] in ("bilinear", "linear"):  # half-pixel centres: two neighbours
        return (lambda lo: floor((lo + 0.5) / f - 0.5)), (lambda hi: floor((hi + 0.5) / f - 0.5) + 1), (f, 1)
    return (lambda lo: lo // f), (lambda hi: hi // f), (f, 1)


def resize_span(layer, in_size, axis):
    scale = in_size / layer.attrs["size"][axis]
    return (lambda lo: floor((lo + 0.5) * scale - 0.5)), (lambda hi: floor((hi + 0.5) * scale - 0.5) + 1), None


def interpolating_saved(layer, elements):
    """Bilinear interpolation's gradient reads its input; nearest copies need only shapes."""
    if layer.attrs.get("interpolation", "bilinear") != "nearest":
        return list(layer.inputs), 0
    return keeps_nothing(layer, elements)


def upsample_from_keras(layer) -> dict:
    linear = type(layer).__name__ == "LinearUpSampling"
    return {"factor": tuple(each_axis(layer.size, 3)),
            "interpolation": "linear" if linear else getattr(layer, "interpolation", "nearest")}


KINDS = (
    LayerKind("upsample", UpsampleAttrs, size=upsample_size,
              factor=lambda a, ndim: tuple(Fraction(1, f) for f in each_axis(a["factor"], ndim)),
              params=known_params, flops=no_flops, span=upsample_span, saved=interpolating_saved,
              workspace=no_workspace, locality=window,
              sees_edges=lambda a: a.get("interpolation", "nearest") != "nearest",
              note=lambda layer: f"x{axes_text(layer.attrs['factor'])} {layer.attrs['interpolation']}",
              emitter="emit_upsample", keras=KerasForm((*ranked("UpSampling"), "LinearUpSampling"), upsample_from_keras)),
    # To the size of the layer it is ``like`` (a skip): a scale that is not a whole factor.
    LayerKind("resize", ResizeAttrs, size=lambda node, sizes, amounts, axis, n: sizes[node.like],
              factor=lambda a, ndim: (Fraction(1),) * ndim,
              params=known_params, flops=no_flops, span=resize_span, saved=interpolating_saved,
              workspace=no_workspace, locality=window, sees_edges=lambda a: True,
              note=lambda layer: "", emitter="emit_resize", keras=KerasForm(("Resizing",))),
)
