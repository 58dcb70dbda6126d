"""Spatial sizes along one axis, one small function per layer kind.

Every op acts on each spatial axis alone, so a whole input shape is solved one axis at a time,
and the legal-size solver probes a single axis. Kernels, strides and factors may differ per axis
(an int is the same on every axis, a tuple gives one per axis).
"""

from __future__ import annotations

from typing import Callable

from archgen.planner.ir import Node


class SizeError(Exception):
    """A layer cannot take the size it is given on one axis."""

    def __init__(self, node: Node, size: int, reason: str):
        self.node, self.size, self.reason = node, size, reason
        super().__init__(f"{node.name} gets {size}: {reason}")


def _on(value, axis: int) -> int:
    return value if isinstance(value, int) else value[axis]


def conv_size(node: Node, n: int, axis: int = 0) -> int:
    a = node.attrs
    k, s, d = _on(a["kernel"], axis), _on(a["stride"], axis), a["dilation"]
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


def transpose_size(node: Node, n: int, axis: int = 0) -> int:
    # Padding "same" makes a transposed conv scale the size exactly by its stride; "valid" gives the
    # full output, which a crop then trims to PyTorch's padding.
    if node.attrs.get("padding") == "valid":
        return (n - 1) * _on(node.attrs["stride"], axis) + _on(node.attrs["kernel"], axis)
    return n * _on(node.attrs["stride"], axis)


def pool_size(node: Node, n: int, axis: int = 0) -> int:
    f = _on(node.attrs["factor"], axis)
    if node.attrs.get("floor"):  # drops the last rows, as PyTorch's pooling does
        if n < f:
            raise SizeError(node, n, f"smaller than the pool size {f}")
        return n // f
    if n % f:
        raise SizeError(node, n, f"not a multiple of the pool size {f}, so it does not tile seamlessly")
    return n // f


def upsample_size(node: Node, n: int, axis: int = 0) -> int:
    return n * _on(node.attrs["factor"], axis)


def backbone_size(node: Node, n: int, axis: int = 0) -> int:
    """A keras.applications backbone: its stride-32 output, where every tap lines up with the decoder
    only if 32 divides the size, and Keras builds it only from ``min_size`` on."""
    f, smallest = node.attrs["factor"], node.attrs["min_size"]
    if n < smallest:
        raise SizeError(node, n, f"below {node.attrs['backbone']}'s smallest input size, {smallest}")
    if n % f:
        raise SizeError(node, n, f"not a multiple of {f}, the backbone's total stride, so its stage outputs "
                                 f"do not line up with the decoder")
    return n // f


def tap_size(node: Node, n: int, axis: int = 0) -> int:
    """A backbone's stage output: the backbone's size (input / 32) times 32 / the tap's stride."""
    return n * node.attrs["factor"]


def same_size(node: Node, n: int, axis: int = 0) -> int:
    return n


def one_size(node: Node, n: int, axis: int = 0) -> int:
    return 1  # a global pooling keeps one position per axis


def crop_amount(node: Node, n: int, target: int) -> tuple[int, int]:
    """Centre crop of ``n`` down to ``target``; the odd pixel goes to the end."""
    if n < target:
        raise SizeError(node, n, f"cannot be cropped to {target}, which is larger")
    before = (n - target) // 2
    return before, n - target - before


def pad_amount(node: Node, n: int, target: int) -> tuple[int, int]:
    """Zero padding of ``n`` up to ``target``; the odd pixel goes to the end."""
    if n > target:
        raise SizeError(node, n, f"cannot be padded to {target}, which is smaller")
    before = (target - n) // 2
    return before, target - n - before


UNARY: dict[str, Callable[[Node, int], int]] = {
    "conv": conv_size,
    "conv_transpose": transpose_size,
    "maxpool": pool_size,
    "avgpool": pool_size,
    "upsample": upsample_size,
    "norm": same_size,
    "activation": same_size,
    "dropout": same_size,
    "backbone": backbone_size,
    "tap": tap_size,
    "global_pool": one_size,
    "dense": same_size,
    "attention": same_size,
    "position_embedding": same_size,
}
ALIGN: dict[str, Callable[[Node, int, int], tuple[int, int]]] = {"crop": crop_amount, "pad": pad_amount}


def infer_axis(nodes: list[Node], n: int, axis: int = 0) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """Sizes of every node on spatial axis ``axis`` for input size ``n``, and each crop/pad as
    (before, after). A pad without ``like`` pads by its fixed ``amounts`` (a strided conv's padding).

    Raises ``SizeError`` at the first layer that cannot take its size.
    """
    sizes: dict[str, int] = {}
    amounts: dict[str, tuple[int, int]] = {}
    for node in nodes:
        kind = node.kind
        if kind == "input":
            if n < 1:
                raise SizeError(node, n, "not a positive size")
            sizes[node.name] = n
        elif kind in UNARY:
            sizes[node.name] = UNARY[kind](node, sizes[node.inputs[0]], axis)
        elif kind == "pad" and node.like is None:
            before, after = node.attrs["amounts"][axis]
            stride = _on(node.attrs["stride"], axis)
            if sizes[node.inputs[0]] % stride:  # the strided conv it pads for tiles only whole strides
                raise SizeError(node, sizes[node.inputs[0]], f"not a multiple of the stride {stride} of the conv "
                                                             f"it pads for, so it does not tile seamlessly")
            amounts[node.name] = (before, after)
            sizes[node.name] = sizes[node.inputs[0]] + before + after
        elif kind == "crop" and "amounts" in node.attrs:  # a fixed crop (PyTorch's transposed-conv padding)
            before, after = node.attrs["amounts"][axis]
            n_in = sizes[node.inputs[0]]
            if n_in - before - after < 1:
                raise SizeError(node, n_in, f"too small to crop {before} + {after} from")
            amounts[node.name] = (before, after)
            sizes[node.name] = n_in - before - after
        elif kind in ALIGN:
            # A crop into a node of several inputs takes the smallest of them (``smallest_of``).
            target = sizes[node.like] if node.like else min(sizes[i] for i in node.attrs["smallest_of"])
            amounts[node.name] = ALIGN[kind](node, sizes[node.inputs[0]], target)
            sizes[node.name] = target
        elif kind == "resize":
            sizes[node.name] = sizes[node.like]
        elif kind == "scale":  # a gate of size 1 broadcast over its first input
            sizes[node.name] = sizes[node.inputs[0]]
        else:  # merges: concat, add, multiply
            first, *rest = (sizes[i] for i in node.inputs)
            for other in rest:
                if other != first:
                    raise SizeError(node, first, f"its inputs differ in size ({first} vs {other}); "
                                                 f"align the skip (decoder.align: crop, pad or resize)")
            sizes[node.name] = first
    return sizes, amounts
