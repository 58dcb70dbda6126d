"""Crops and zero pads: a skip aligned to the layer it joins (``like``), the smallest of a merge's
inputs, or fixed amounts (PyTorch's conv and transposed-conv padding). The odd pixel goes to the end."""

from __future__ import annotations

from dataclasses import dataclass

from archgen.kinds.base import (
    Attrs,
    KerasForm,
    LayerKind,
    SizeError,
    each_axis,
    keeps_nothing,
    known_params,
    no_flops,
    no_workspace,
    on,
    ranked,
    unit_factor,
    window,
)


@dataclass(frozen=True)
class CropAttrs(Attrs):
    """A crop to the layer it joins (``like``), to the smallest of ``smallest_of``, or by fixed
    ``amounts`` per axis; ``cropping`` is what the planner solved, ``(before, after)`` per axis."""

    smallest_of: tuple[str, ...] | None = None
    amounts: tuple[tuple[int, int], ...] | None = None
    cropping: tuple[tuple[int, int], ...] | None = None


@dataclass(frozen=True)
class PadAttrs(Attrs):
    """Zeros padded to the layer it joins (``like``), or fixed ``amounts`` before a strided conv of
    ``stride``; ``padding`` is what the planner solved, ``(before, after)`` per axis."""

    amounts: tuple[tuple[int, int], ...] | None = None
    stride: int | tuple[int, ...] = 1
    padding: tuple[tuple[int, int], ...] | None = None


def crop_amount(node, n: int, target: int) -> tuple[int, int]:
    if n < target:
        raise SizeError(node, n, f"cannot be cropped to {target}, which is larger")
    before = (n - target) // 2
    return before, n - target - before


def pad_amount(node, n: int, target: int) -> tuple[int, int]:
    if n > target:
        raise SizeError(node, n, f"cannot be padded to {target}, which is smaller")
    before = (target - n) // 2
    return before, target - n - before


def _target(node, sizes) -> int:
    # A crop into a node of several inputs takes the smallest of them (``smallest_of``).
    return sizes[node.like] if node.like else min(sizes[i] for i in node.attrs["smallest_of"])


def crop_size(node, sizes, amounts, axis, n_input) -> int:
    n_in = sizes[node.inputs[0]]
    if "amounts" in node.attrs:  # a fixed crop (PyTorch's transposed-conv padding)
        before, after = node.attrs["amounts"][axis]
        if n_in - before - after < 1:
            raise SizeError(node, n_in, f"too small to crop {before} + {after} from")
        amounts[node.name] = (before, after)
        return n_in - before - after
    target = _target(node, sizes)
    amounts[node.name] = crop_amount(node, n_in, target)
    return target


def pad_size(node, sizes, amounts, axis, n_input) -> int:
    n_in = sizes[node.inputs[0]]
    if node.like is None:  # a strided conv's fixed padding
        before, after = node.attrs["amounts"][axis]
        stride = on(node.attrs["stride"], axis)
        if n_in % stride:  # the strided conv it pads for tiles only whole strides
            raise SizeError(node, n_in, f"not a multiple of the stride {stride} of the conv it pads for, so it "
                                        f"does not tile seamlessly")
        amounts[node.name] = (before, after)
        return n_in + before + after
    target = _target(node, sizes)
    amounts[node.name] = pad_amount(node, n_in, target)
    return target


def shift_span(key: str, sign: int):
    def span(layer, in_size, axis):
        shift = sign * layer.attrs[key][axis][0]
        return (lambda lo: lo + shift), (lambda hi: hi + shift), (1, 1)
    return span


def keras_pairs(value) -> tuple:
    """A Keras cropping or padding, as ``(before, after)`` per axis."""
    return tuple(tuple(v) if isinstance(v, (tuple, list)) else (v, v) for v in each_axis(value, 3))


KINDS = (
    LayerKind("crop", CropAttrs, size=crop_size, factor=unit_factor, params=known_params, flops=no_flops,
              span=shift_span("cropping", 1), saved=keeps_nothing, workspace=no_workspace, locality=window,
              sees_edges=lambda a: False,
              note=lambda layer: "crop " + ", ".join(f"{b}+{e}" for b, e in layer.attrs["cropping"]),
              emitter="emit_crop",
              keras=KerasForm(ranked("Cropping"), lambda layer: {"cropping": keras_pairs(layer.cropping)})),
    LayerKind("pad", PadAttrs, size=pad_size, factor=unit_factor, params=known_params, flops=no_flops,
              span=shift_span("padding", -1), saved=keeps_nothing, workspace=no_workspace, locality=window,
              sees_edges=lambda a: True,
              note=lambda layer: "pad " + ", ".join(f"{b}+{e}" for b, e in layer.attrs["padding"]),
              emitter="emit_pad",
              keras=KerasForm(ranked("ZeroPadding"), lambda layer: {"padding": keras_pairs(layer.padding)})),
)
