"""Training patches: where in an image a patch is cut, and the batch it makes (NumPy only).

A patch is the network's input window. Its output window (the centre the main head predicts;
all of it for ``padding: same``) is drawn inside the image, so every labelled pixel can be
trained on; where the input window reaches past the image, the image is mirrored as
``predict_tiled`` mirrors it (``archgen.tiling.reflect_indices``), as Ronneberger et al. do.

Foreground oversampling is nnU-Net's: the last ``round(batch x oversampling)`` patches of each
batch are centred on a pixel of a foreground class (a class drawn among those the image has,
then one of its pixels), clamped into the image; the others are drawn uniformly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from archgen.tiling import reflect_indices
from archgen.train.dataset import Case


@dataclass(frozen=True)
class Window:
    """The input patch and the main output's place in it, per spatial axis."""

    patch: tuple[int, ...]  # input size
    out: tuple[int, ...]  # the main output's size
    before: tuple[int, ...]  # input pixels before the output window

    @classmethod
    def of(cls, patch: Sequence[int], out: Sequence[int]) -> Window:
        """The output centred in the patch, the odd pixel at the end (as the network's own crops)."""
        return cls(tuple(patch), tuple(out), tuple((p - o) // 2 for p, o in zip(patch, out)))


def draw_start(case: Case, window: Window, rng: np.random.Generator, foreground: bool) -> tuple[int, ...]:
    """The output window's first pixel in the image: on a foreground pixel, or anywhere."""
    spatial = case.spatial
    room = [s - o for s, o in zip(spatial, window.out)]
    if foreground and case.locations:
        classes = sorted(case.locations)
        where = case.locations[classes[rng.integers(len(classes))]]
        centre = where[rng.integers(len(where))]
        return tuple(int(min(max(c - o // 2, 0), r)) for c, o, r in zip(centre, window.out, room))
    return tuple(int(rng.integers(0, r + 1)) for r in room)


def cut(array: np.ndarray, start: Sequence[int], window: Window) -> np.ndarray:
    """The input window of ``array`` (``(*spatial, ...)``) whose output window starts at ``start``,
    mirrored where it reaches past the image."""
    index = []
    for axis, (s, p, b) in enumerate(zip(start, window.patch, window.before)):
        n = array.shape[axis]
        lo = s - b
        if lo >= 0 and lo + p <= n:
            index.append(slice(lo, lo + p))
        else:
            index.append(reflect_indices(n, b, p)[s: s + p])
    if all(isinstance(i, slice) for i in index):
        return array[tuple(index)]
    return array[np.ix_(*[np.arange(i.start, i.stop) if isinstance(i, slice) else i for i in index])]


def draw_batch(cases: Sequence[Case], window: Window, batch: int, rng: np.random.Generator,
               oversampling: float) -> tuple[np.ndarray, np.ndarray]:
    """``batch`` patches: images ``(B, *patch, C)`` float32 and the labels of the same window."""
    forced_from = round(batch * (1 - oversampling))
    images, labels = [], []
    for b in range(batch):
        case = cases[int(rng.integers(len(cases)))]
        start = draw_start(case, window, rng, foreground=b >= forced_from)
        images.append(cut(case.image, start, window))
        labels.append(cut(case.target, start, window))
    return np.stack(images), np.stack(labels)
