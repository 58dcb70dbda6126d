"""A keras.applications backbone (one nested model) and its taps (stage outputs the decoder reads)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod

from archgen.kinds.base import (
    Attrs,
    LayerKind,
    Locality,
    SizeError,
    keeps_nothing,
    known_params,
    no_edges,
    no_flops,
    no_workspace,
    pixel,
)


@dataclass(frozen=True)
class BackboneAttrs(Attrs):
    """A keras.applications network: its table row's facts and how it is used."""

    backbone: str
    constructor: str
    factor: int
    min_size: int
    weights: str | None
    trainable_stages: int
    taps: tuple
    flops_per_tile: int
    flops_constant: int


@dataclass(frozen=True)
class TapAttrs(Attrs):
    """One of the backbone's outputs (``index``): the tensor of ``layer`` (its ``side``), at ``stride``."""

    index: int
    layer: str | None
    side: str
    stride: int
    factor: int


def backbone_size(node, sizes, amounts, axis, n_input) -> int:
    """Its stride-32 output, where every tap lines up with the decoder only if 32 divides the size,
    and Keras builds it only from ``min_size`` on."""
    n = sizes[node.inputs[0]]
    f, smallest = node.attrs["factor"], node.attrs["min_size"]
    if n < smallest:
        raise SizeError(node, n, f"below {node.attrs['backbone']}'s smallest input size, {smallest}")
    if n % f:
        raise SizeError(node, n, f"not a multiple of {f}, the backbone's total stride, so its stage outputs "
                                 f"do not line up with the decoder")
    return n // f


def backbone_flops(node, nodes, spatial, in_spatial, ndim) -> int | None:
    """The table's count of its convolutions, per 32x32 tile of the input."""
    if any(p is None for p in in_spatial):
        return None
    return node.attrs["flops_per_tile"] * prod(n // node.attrs["factor"] for n in in_spatial) + \
        node.attrs["flops_constant"]


def backbone_span(layer, in_size, axis):
    """Counted as reading its whole input (deep stages and their pools see it all); at an open size,
    only the input positions its stride maps to (a lower bound)."""
    f = layer.attrs["factor"]
    if in_size is not None:
        return (lambda lo: 0), (lambda hi: in_size - 1), (1, 0)
    return (lambda lo: lo * f), (lambda hi: hi * f + f - 1), (1, f)


def backbone_locality(a) -> tuple[Locality, str]:
    """Backbones with squeeze-and-excitation (the table's FLOPs on pooled maps) read the whole map;
    the others are convolutions, pools and per-pixel norms."""
    if a["flops_constant"]:
        return Locality.WHOLE_MAP, "backbone with squeeze-and-excitation: the mean of the whole map"
    return Locality.WINDOW, ""


def backbone_note(layer) -> str:
    a = layer.attrs
    learn = {0: "frozen", len(a["taps"]): "all learn"}.get(a["trainable_stages"],
                                                           f"last {a['trainable_stages']} stages learn")
    return f"{a['constructor']} weights {a['weights'] or 'none'}, {learn}"


def tap_span(layer, in_size, axis):  # finer than the backbone node by ``factor``
    f = layer.attrs["factor"]
    return (lambda lo: lo // f), (lambda hi: hi // f), (f, 1)


KINDS = (
    LayerKind("backbone", BackboneAttrs, size=backbone_size, factor=lambda a, ndim: (Fraction(a["factor"]),) * ndim,
              params=known_params, flops=backbone_flops, span=backbone_span, saved=keeps_nothing,
              workspace=no_workspace, locality=backbone_locality, sees_edges=lambda a: True,  # it zero-pads
              note=backbone_note, emitter="emit_backbone", keras=None),  # a nested model: tiling follows into it
    LayerKind("tap", TapAttrs, size=lambda node, sizes, amounts, axis, n: sizes[node.inputs[0]] * node.attrs["factor"],
              factor=lambda a, ndim: (Fraction(1, a["factor"]),) * ndim, params=known_params, flops=no_flops,
              span=tap_span, saved=keeps_nothing, workspace=no_workspace, locality=pixel, sees_edges=no_edges,
              note=lambda layer: (layer.attrs["layer"] or "output") + (" (its input)" if layer.attrs["side"] ==
                                                                       "input" else ""),
              emitter="emit_tap", keras=None),  # a layer of the backbone, read as its own kind
)
