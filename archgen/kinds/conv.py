"""Convolutions and transposed convolutions (``Conv{n}D``, ``Conv{n}DTranspose``)."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import prod

from archgen.kinds.base import (
    Attrs,
    KerasForm,
    LayerKind,
    Locality,
    SizeError,
    axes_text,
    each_axis,
    known_params,
    on,
    on_axis,
    ranked,
)
from archgen.kinds.memory import CONV_COPIES, activation_kept


@dataclass(frozen=True)
class ConvAttrs(Attrs):
    """A conv, transposed conv or depthwise conv. ``floor``: a strided conv after an explicit pad drops a
    remainder, as PyTorch's does."""

    filters: int
    kernel: int | tuple[int, ...]
    stride: int | tuple[int, ...]
    dilation: int
    padding: str  # "same" | "valid"
    activation: str
    use_bias: bool
    floor: bool = False


def conv_size(node, sizes, amounts, axis, n_input) -> int:
    n = sizes[node.inputs[0]]
    a = node.attrs
    k, s, d = on(a["kernel"], axis), on(a["stride"], axis), a["dilation"]
    reach = (k - 1) * d + 1
    if a["padding"] == "valid":
        if n < reach:
            raise SizeError(node, n, f"smaller than the kernel's reach of {reach}")
        if (n - reach) % s and not a.get("floor"):
            raise SizeError(node, n, f"a valid conv of kernel {k}, stride {s} leaves a remainder "
                                     f"(needs {reach} + a multiple of {s})")
        return (n - reach) // s + 1
    if n % s:
        raise SizeError(node, n, f"not a multiple of the stride {s}, so it does not tile seamlessly")
    return n // s


def transpose_size(node, sizes, amounts, axis, n_input) -> int:
    # Padding "same" makes a transposed conv scale the size exactly by its stride; "valid" gives the
    # full output, which a crop then trims to PyTorch's padding.
    n = sizes[node.inputs[0]]
    if node.attrs.get("padding") == "valid":
        return (n - 1) * on(node.attrs["stride"], axis) + on(node.attrs["kernel"], axis)
    return n * on(node.attrs["stride"], axis)


def conv_flops(node, nodes, spatial, in_spatial, ndim) -> int | None:
    # A transposed conv does its multiply-adds per input position, a conv per output position.
    positions = in_spatial if node.kind == "conv_transpose" else spatial
    if any(p is None for p in positions):
        return None
    kernel = node.attrs["kernel"]
    taps = kernel**ndim if isinstance(kernel, int) else prod(kernel)
    return 2 * prod(positions) * taps * nodes[node.inputs[0]].channels * node.attrs["filters"]


def depthwise_flops(node, nodes, spatial, in_spatial, ndim) -> int | None:
    # One filter per channel: the taps of each channel, not of every input channel.
    positions = in_spatial if node.kind == "depthwise_conv_transpose" else spatial
    if any(p is None for p in positions):
        return None
    kernel = node.attrs["kernel"]
    taps = kernel**ndim if isinstance(kernel, int) else prod(kernel)
    return 2 * prod(positions) * taps * node.attrs["filters"]


def conv_span(layer, in_size, axis):
    a = on_axis(layer.attrs, axis)
    s, reach = a["stride"], (a["kernel"] - 1) * a["dilation"] + 1
    before = 0 if a["padding"] == "valid" else max(reach - s, 0) // 2  # TensorFlow's "same" split
    return (lambda lo: lo * s - before), (lambda hi: hi * s - before + reach - 1), (1, s)


def transpose_span(layer, in_size, axis):
    # The gradient of a "same" conv: output u gets input i when i*s - before <= u < i*s - before + k.
    a = on_axis(layer.attrs, axis)
    k, s = a["kernel"], a["stride"]
    before = 0 if a.get("padding") == "valid" else max(k - s, 0) // 2
    return (lambda lo: -((k - 1 - lo - before) // s)), (lambda hi: (hi + before) // s), (s, 1)


def conv_saved(layer, elements):
    own, extra = activation_kept(layer, elements)
    return [*layer.inputs, *own], extra  # the filter gradient reads the input


def conv_workspace(layer, elements) -> int:
    return CONV_COPIES * (elements[layer.name] + sum(elements[m] for m in layer.inputs)) // 2


def window(attrs) -> tuple[Locality, str]:
    return Locality.WINDOW, ""


def conv_sees_edges(a) -> bool:
    kernel, stride = each_axis(a["kernel"], 3), each_axis(a["stride"], 3)
    return a["padding"] == "same" and any((k - 1) * a["dilation"] + 1 > s for k, s in zip(kernel, stride))


def transpose_sees_edges(a) -> bool:  # overlapping kernels: border outputs miss neighbours
    return any(k > s for k, s in zip(each_axis(a["kernel"], 3), each_axis(a["stride"], 3)))


def conv_note(layer) -> str:
    a = layer.attrs
    act = "" if a["activation"] == "linear" else f" {a['activation']}"
    stride = f"/{axes_text(a['stride'])}" if max(each_axis(a["stride"], 1)) > 1 else ""
    return f"k{axes_text(a['kernel'])}{stride} {a['padding']}{act}"


def depthwise_note(layer) -> str:
    return "depthwise " + (transpose_note(layer) if layer.kind == "depthwise_conv_transpose" else conv_note(layer))


def transpose_note(layer) -> str:
    a = layer.attrs
    act = "" if a["activation"] == "linear" else f" {a['activation']}"
    return f"k{axes_text(a['kernel'])}x{axes_text(a['stride'])} {act}".replace("  ", " ")


def _rank(layer) -> int:
    return len(getattr(layer, "kernel_size", ()) or ()) or 3


def conv_from_keras(layer) -> dict:
    rank = _rank(layer)
    return {"kernel": tuple(layer.kernel_size), "stride": each_axis(layer.strides, rank),
            "dilation": max(each_axis(layer.dilation_rate, rank)), "padding": layer.padding}


def transpose_from_keras(layer) -> dict:
    return {"kernel": tuple(layer.kernel_size), "stride": each_axis(layer.strides, _rank(layer))}


KINDS = (
    LayerKind("conv", ConvAttrs, size=conv_size,
              factor=lambda a, ndim: tuple(Fraction(f) for f in each_axis(a["stride"], ndim)),
              params=known_params, flops=conv_flops, span=conv_span, saved=conv_saved, workspace=conv_workspace,
              locality=window, sees_edges=conv_sees_edges, note=conv_note, emitter="emit_conv",
              keras=KerasForm(ranked("Conv"), conv_from_keras)),
    LayerKind("conv_transpose", ConvAttrs, size=transpose_size,
              factor=lambda a, ndim: tuple(Fraction(1, f) for f in each_axis(a["stride"], ndim)),
              params=known_params, flops=conv_flops, span=transpose_span, saved=conv_saved,
              workspace=conv_workspace, locality=window, sees_edges=transpose_sees_edges, note=transpose_note,
              emitter="emit_conv_transpose", keras=KerasForm(ranked("Conv", "Transpose"), transpose_from_keras)),
    # One filter per channel (``filters`` = the input's channels): ConvNeXt's and MedNeXt's spatial conv.
    LayerKind("depthwise_conv", ConvAttrs, size=conv_size,
              factor=lambda a, ndim: tuple(Fraction(f) for f in each_axis(a["stride"], ndim)),
              params=known_params, flops=depthwise_flops, span=conv_span, saved=conv_saved,
              workspace=conv_workspace, locality=window, sees_edges=conv_sees_edges, note=depthwise_note,
              emitter="emit_depthwise_conv", keras=KerasForm(ranked("DepthwiseConv"), conv_from_keras)),
    LayerKind("depthwise_conv_transpose", ConvAttrs, size=transpose_size,
              factor=lambda a, ndim: tuple(Fraction(1, f) for f in each_axis(a["stride"], ndim)),
              params=known_params, flops=depthwise_flops, span=transpose_span, saved=conv_saved,
              workspace=conv_workspace, locality=window, sees_edges=transpose_sees_edges, note=depthwise_note,
              emitter="emit_depthwise_conv_transpose",
              keras=KerasForm(("DepthwiseConvTranspose", *ranked("DepthwiseConv", "Transpose")), transpose_from_keras)),
)
