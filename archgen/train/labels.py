"""What a segmentation or regression head's output means, and its labels resized to it (NumPy only).

A head's final activation says how its channels read (``head_mode``):

- ``softmax`` over K channels: one class per pixel, labels 0..K-1, channel 0 the background;
- ``sigmoid`` over K channels: each channel on its own, labels 0..K, label k lights channel k-1
  and label 0 (the background) none (K = 1 is a binary head);
- ``linear`` is logits: of a softmax for K >= 2 channels, of a sigmoid for one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

CLASS_ACTIVATIONS = ("softmax", "sigmoid", "linear")


@dataclass(frozen=True)
class HeadMode:
    """How a head's channels are read: ``activation`` softmax or sigmoid, and whether the
    output holds that activation's input (logits) rather than its result."""

    activation: str
    from_logits: bool
    channels: int

    @property
    def classes(self) -> int:
        """Label values 0..classes-1 the head can be trained on."""
        return self.channels if self.activation == "softmax" else self.channels + 1


def head_mode(activation: str, channels: int) -> HeadMode | None:
    """The mode of a head with this activation and channel count; None where it cannot
    segment (relu, tanh, ...: a regression head)."""
    if activation in ("softmax", "sigmoid"):
        return HeadMode(activation, False, channels)
    if activation == "linear":
        return HeadMode("softmax" if channels > 1 else "sigmoid", True, channels)
    return None


def resize_nearest(labels: np.ndarray, factors: Sequence[int], first_axis: int = 0) -> np.ndarray:
    """``labels`` with the spatial axes from ``first_axis`` on shrunk by whole ``factors``: from
    each block of ``f`` pixels the one nearest its centre (pixel ``f // 2``), as nnU-Net's
    nearest-exact down-sampling of labels for deep supervision. Class values are never mixed."""
    index: list[slice] = [slice(None)] * labels.ndim
    for k, f in enumerate(factors):
        if f > 1:
            index[first_axis + k] = slice(f // 2, None, f)
    return labels[tuple(index)]


def shrink_factors(scale: Sequence[Fraction]) -> list[int]:
    """A coarse head's scale per axis (1/2, 1/4, ...) as whole down-sampling factors."""
    out = []
    for s in scale:
        f = 1 / Fraction(s)
        if f.denominator != 1:
            raise ValueError(f"a head at scale {s} is not a whole down-sampling of the input")
        out.append(int(f))
    return out


def centre_crop(array: np.ndarray, sizes: Sequence[int], first_axis: int) -> np.ndarray:
    """``array`` cut to ``sizes`` on the axes from ``first_axis`` on, centred, the odd pixel
    cut at the end (where the network's own centre crops put it)."""
    index: list[slice] = [slice(None)] * array.ndim
    for k, size in enumerate(sizes):
        n = array.shape[first_axis + k]
        before = (n - size) // 2
        index[first_axis + k] = slice(before, before + size)
    return array[tuple(index)]
