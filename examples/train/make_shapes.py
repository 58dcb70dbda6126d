"""Write a small segmentation dataset to train on: discs and squares on noise, as PNG files.

::

    python examples/train/make_shapes.py data/shapes            # 48 cases of 64x64
    python examples/train/make_shapes.py data/shapes --count 200 --size 96

writes ``DIR/images/case_000.png`` (8-bit grey) and ``DIR/masks/case_000.png`` (labels: 0
background, 1 disc, 2 square), the layout ``archgen train --data DIR`` reads. Discs are a little
brighter and squares a little darker than the background, by less than the noise, so a pixel on
its own is often misread: the network needs its neighbours. Needs NumPy and Pillow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def draw_case(rng: np.random.Generator, size: int, noise: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """One image (uint8, ``size`` x ``size``) with 3 to 7 shapes, and its labels (uint8)."""
    image = rng.normal(0.0, noise, (size, size))
    labels = np.zeros((size, size), dtype=np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for _ in range(rng.integers(3, 8)):  # about a quarter of the pixels end up in a shape
        r = rng.uniform(size / 10, size / 5)
        cy, cx = rng.uniform(r, size - r, 2)
        if rng.random() < 0.5:
            mask, label, shift = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r, 1, 1.0
        else:
            mask, label, shift = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85), 2, -1.0
        labels[mask] = label
        image[mask] += shift
    return np.clip(128 + 40 * image, 0, 255).astype(np.uint8), labels


def write_shapes(folder: Path, count: int = 48, size: int = 64, seed: int = 0) -> Path:
    """Write ``count`` cases into ``folder/images`` and ``folder/masks``; return ``folder``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, labels = draw_case(rng, size)
        Image.fromarray(image).save(folder / "images" / f"case_{i:03d}.png")
        Image.fromarray(labels).save(folder / "masks" / f"case_{i:03d}.png")
    return folder


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="where to write images/ and masks/")
    p.add_argument("--count", type=int, default=48, help="cases (default 48)")
    p.add_argument("--size", type=int, default=64, help="height and width (default 64)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    write_shapes(args.folder, args.count, args.size, args.seed)
    print(f"wrote {args.count} cases of {args.size}x{args.size} into {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
