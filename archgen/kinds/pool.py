"""Pooling: max and average pooling by a factor, and the global mean of squeeze-and-excitation."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from archgen.kinds.base import (
    Attrs,
    KerasForm,
    LayerKind,
    Locality,
    NoAttrs,
    NotThisKind,
    SizeError,
    axes_text,
    each_axis,
    keeps_nothing,
    known_params,
    no_edges,
    no_flops,
    no_workspace,
    on,
    on_axis,
    ranked,
    same_span,
)


@dataclass(frozen=True)
class PoolAttrs(Attrs):
    """A max or average pool of stride ``factor``; ``window`` when larger than the stride (a ResNet
    stem's 3x3/2); ``floor`` drops a remainder, as PyTorch's pooling does."""

    factor: int | tuple[int, ...]
    window: int | None = None
    floor: bool = False


def pool_size(node, sizes, amounts, axis, n_input) -> int:
    n = sizes[node.inputs[0]]
    f = on(node.attrs["factor"], axis)
    w = node.attrs.get("window")
    if w is not None:  # a window larger than the stride (a ResNet stem's 3x3/2), over its padded input
        if n < w:
            raise SizeError(node, n, f"smaller than the pool window {w}")
        if (n - w) % f and not node.attrs.get("floor"):
            raise SizeError(node, n, f"a pool of window {w}, stride {f} leaves a remainder")
        return (n - w) // f + 1
    if node.attrs.get("floor"):  # drops the last rows, as PyTorch's pooling does
        if n < f:
            raise SizeError(node, n, f"smaller than the pool size {f}")
        return n // f
    if n % f:
        raise SizeError(node, n, f"not a multiple of the pool size {f}, so it does not tile seamlessly")
    return n // f


def pool_span(layer, in_size, axis):
    f = on_axis(layer.attrs, axis)["factor"]
    w = layer.attrs.get("window") or f
    return (lambda lo: lo * f), (lambda hi: hi * f + w - 1), (1, f)


def pool_factor(a, ndim):
    return tuple(Fraction(f) for f in each_axis(a["factor"], ndim))


def max_saved(layer, elements):
    return [*layer.inputs, layer.name], 0


def window(attrs):
    return Locality.WINDOW, ""


def whole_map(attrs):
    return Locality.WHOLE_MAP, "squeeze-and-excitation: the mean of the whole map"


def pool_note(layer) -> str:
    window = layer.attrs.get("window")
    return (f"k{window}" if window else "") + f"/{axes_text(layer.attrs['factor'])}"


def pool_from_keras(layer) -> dict:
    if layer.padding != "valid" and tuple(each_axis(layer.pool_size, 3)) != tuple(each_axis(layer.strides, 3)):
        raise NotThisKind("a 'same'-padded pool whose windows overlap")
    return {"factor": tuple(each_axis(layer.strides, 3))}


KINDS = (
    LayerKind("maxpool", PoolAttrs, size=pool_size, factor=pool_factor, params=known_params, flops=no_flops, span=pool_span,
              saved=max_saved, workspace=no_workspace, locality=window, sees_edges=no_edges, note=pool_note,
              emitter="emit_maxpool", keras=KerasForm(ranked("MaxPooling"), pool_from_keras)),
    LayerKind("avgpool", PoolAttrs, size=pool_size, factor=pool_factor, params=known_params, flops=no_flops, span=pool_span,
              saved=keeps_nothing, workspace=no_workspace, locality=window, sees_edges=no_edges, note=pool_note,
              emitter="emit_avgpool", keras=KerasForm(ranked("AveragePooling"), pool_from_keras)),
    # Its statistics are not counted as reading other positions in the receptive field (as batch
    # norm's are not); tiling knows better: it reads the whole map.
    LayerKind("global_pool", NoAttrs, size=lambda node, sizes, amounts, axis, n: 1,
              factor=lambda a, ndim: (Fraction(1),) * ndim, params=known_params, flops=no_flops, span=same_span,
              saved=keeps_nothing, workspace=no_workspace, locality=whole_map, sees_edges=no_edges,
              note=lambda layer: "global mean", emitter="emit_global_pool",
              keras=KerasForm(ranked("GlobalAveragePooling"))),
)
