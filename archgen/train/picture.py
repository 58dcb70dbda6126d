"""A validation picture: the image, its label and the prediction side by side, as a PNG.

Written with zlib alone (a PNG is a signature, an IHDR chunk, zlib-compressed rows with a
filter byte each, and an IEND chunk), so no imaging package is needed. A 3D case shows its
middle slice along the first axis; an image of several channels its first. Labels are drawn
in a fixed palette (0 black, then distinct colours); a regression target and its prediction as
grey levels scaled together.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
                    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
                    [0, 128, 128], [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0]], dtype=np.uint8)
GAP = 4  # pixels of white between the panels
MIN_HEIGHT = 128  # small images are enlarged (nearest) to at least this many rows...
MAX_WIDTH = 1024  # ...while a panel stays at most this wide
SIGNAL_ROWS = 16  # a 1D signal is drawn as a band of this many rows


def png_bytes(rgb: np.ndarray) -> bytes:
    """An 8-bit RGB image ``(H, W, 3)`` as the bytes of a PNG file."""
    height, width, _ = rgb.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def _slice(array: np.ndarray, ndim: int) -> np.ndarray:
    """The 2D view: the middle slice of a volume, the signal as one row."""
    if ndim == 3:
        return array[array.shape[0] // 2]
    if ndim == 1:
        return np.repeat(array[None], SIGNAL_ROWS, axis=0)
    return array


def _grey(values: np.ndarray, low: float, high: float) -> np.ndarray:
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return np.repeat((np.clip(scaled, 0, 1) * 255).astype(np.uint8)[..., None], 3, axis=-1)


def _labels(values: np.ndarray) -> np.ndarray:
    return PALETTE[np.asarray(values, np.int64) % len(PALETTE)]


def panels(image: np.ndarray, truth: np.ndarray, predicted: np.ndarray, ndim: int) -> np.ndarray:
    """The RGB picture: image | label | prediction. ``image`` ``(*spatial, C)``; ``truth`` and
    ``predicted`` integer labels ``(*spatial)``, or regression maps ``(*spatial, K)``."""
    first = _slice(image[..., 0], ndim)
    low, high = np.percentile(first, [0.5, 99.5]) if first.size else (0.0, 1.0)
    shown = [_grey(first, float(low), float(high))]
    if truth.dtype.kind in "iub":
        shown += [_labels(_slice(truth, ndim)), _labels(_slice(predicted, ndim))]
    else:
        t, p = _slice(truth[..., 0], ndim), _slice(predicted[..., 0], ndim)
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        shown += [_grey(t, lo, hi), _grey(p, lo, hi)]
    height, width = shown[0].shape[:2]
    scale = max(1, min(-(-MIN_HEIGHT // height), MAX_WIDTH // width))
    shown = [np.repeat(np.repeat(s, scale, axis=0), scale, axis=1) for s in shown]
    gap = np.full((shown[0].shape[0], GAP, 3), 255, np.uint8)
    return np.concatenate([shown[0], gap, shown[1], gap, shown[2]], axis=1)
