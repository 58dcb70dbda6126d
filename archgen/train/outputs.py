"""Which labels and which weight each model output trains on (NumPy and the plan; no Keras).

A head named ``logits`` is one output; with deep supervision it has copies (``logits_dec2``,
``logits_dec3`` for a U-Net, ``logits_x0_<j>`` for a UNet++, ``logits_dec<l>`` resized up for
a UNet 3+). nnU-Net weights a head's outputs 1, 1/2, 1/4, ... from the finest to the coarsest,
gives the coarsest 0 and normalises the rest to sum to 1 (``deep_supervision_weights``).

Labels are given for the model's input window: ``(*spatial)`` integer classes or
``(*spatial, C)`` regression targets. Each output takes its part: a full-resolution output
loses its margins (valid padding; the odd pixel at the end, as the network's own crops), and a
coarser one (1/2, 1/4, ...) takes from each block of pixels the one nearest its centre, never
a mix of classes, then the centre that matches its size. For ``padding: same`` that is exactly
nnU-Net's down-sampled labels; for a coarse output of a valid-padding network it lines up with
its level to within a pixel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from archgen.train.labels import HeadMode, centre_crop, resize_nearest, shrink_factors


def deep_supervision_weights(count: int, rule: str = "nnunet") -> list[float]:
    """Weights of a head's ``count`` outputs, full resolution first. ``nnunet``: 1/2^i with the
    coarsest output's weight 0, normalised to sum 1; ``equal``: 1/count each; ``none``: the head
    alone (1, then 0 for every copy)."""
    if count < 1:
        raise ValueError("a head has at least one output")
    if rule == "equal":
        return [1 / count] * count
    if rule == "none":
        return [1.0] + [0.0] * (count - 1)
    weights = [1 / 2**i for i in range(count)]
    if count > 1:
        weights[-1] = 0.0
    total = sum(weights)
    return [w / total for w in weights]


@dataclass(frozen=True)
class OutputTarget:
    """One model output and what it trains on."""

    name: str  # the Keras output name
    head: str  # the head it belongs to (itself, or the head it copies)
    weight: float  # its share of its head's loss
    scale: tuple[Fraction, ...]  # resolution per axis relative to the input (1, 1/2, ...)
    shift: tuple[Fraction, ...]  # size = scale * n + shift on each axis
    mode: HeadMode | None  # how its channels read; None for a regression head
    channels: int

    def size(self, n: Sequence[int]) -> tuple[int, ...]:
        """Output spatial size for an input of size ``n``."""
        return tuple(int(s * m + t) for s, m, t in zip(self.scale, n, self.shift))

    def labels(self, window: np.ndarray, ndim: int, batched: bool = False) -> np.ndarray:
        """This output's labels from the labels of the input window (see the module's docstring)."""
        first = 1 if batched else 0
        spatial = window.shape[first:first + ndim]
        sizes = self.size(spatial)
        if all(s == 1 for s in self.scale):
            margins = [n - m for n, m in zip(spatial, sizes)]
            index = [slice(None)] * window.ndim
            for axis, margin in enumerate(margins):
                before = margin // 2
                index[first + axis] = slice(before, before + sizes[axis])
            return window[tuple(index)]
        resized = resize_nearest(window, shrink_factors(self.scale), first)
        return centre_crop(resized, sizes, first)


_COPY = re.compile(r"^(?P<head>.+)_(?:dec(?P<level>\d+)|x0_(?P<node>\d+))$")


def output_targets(plan, heads: dict[str, tuple[str, int]], rule: str = "nnunet",
                   regression: Sequence[str] = ()) -> list[OutputTarget]:
    """Every output of ``plan`` in the model's order, with its head and weight.

    ``heads``: {head name: (activation, channels)} of the config's heads; ``regression``: heads
    trained as regression (no classes). ``rule``: the deep-supervision weights
    (``deep_supervision_weights``).
    """
    from archgen.tiling import plan_geometry
    from archgen.train.labels import head_mode

    geo = plan_geometry(plan)
    owner: dict[str, str] = {}
    order: dict[str, tuple] = {}
    for out in geo.heads:
        if out.name in heads:
            owner[out.name], order[out.name] = out.name, (0,)
            continue
        match = _COPY.match(out.name)
        if match is None or match.group("head") not in heads:
            raise ValueError(f"output {out.name} belongs to no head of the config")
        owner[out.name] = match.group("head")
        # finer first; at one resolution the deeper U-Net level (UNet 3+) or the shallower nested
        # node (UNet++: x0_1 sees least of the network) comes later
        depth = int(match.group("level")) if match.group("level") else -int(match.group("node"))
        order[out.name] = (1, -min(out.scale), depth)
    weights: dict[str, float] = {}
    for head in heads:
        mine = sorted((name for name in owner if owner[name] == head), key=lambda name: order[name])
        weights.update(zip(mine, deep_supervision_weights(len(mine), rule)))
    targets = []
    for out in geo.heads:
        head = owner[out.name]
        activation, channels = heads[head]
        mode = None if head in regression else head_mode(activation, channels)
        targets.append(OutputTarget(out.name, head, weights[out.name], tuple(out.scale), tuple(out.shift), mode,
                                    channels))
    return targets
