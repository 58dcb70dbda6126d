"""Small data folders for the training tests, written in any format archgen train reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from tests.conftest import ROOT

TINY = """
name: tiny
input: {shape: [32, 32, 1]}
encoder: {depth: 2, filters: 4}
heads: [{name: logits, filters: 3}]
"""


def write(path: Path, array: np.ndarray) -> Path:
    """``array`` as the file ``path`` names: .png, .tif, .npy, .nii or .nii.gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.lower()
    if name.endswith(".png"):
        from PIL import Image

        Image.fromarray(array).save(path)
    elif name.endswith((".tif", ".tiff")):
        import tifffile

        tifffile.imwrite(path, array)
    elif name.endswith(".npy"):
        np.save(path, array)
    elif name.endswith((".nii", ".nii.gz")):
        import nibabel

        nibabel.save(nibabel.Nifti1Image(array, np.eye(4)), str(path))
    else:
        raise ValueError(path)
    return path


def shapes_module():
    spec = importlib.util.spec_from_file_location("make_shapes", ROOT / "examples" / "train" / "make_shapes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def shapes(folder: Path, count: int = 8, size: int = 32, seed: int = 0) -> Path:
    """The example's discs and squares (labels 0..2), as PNG files."""
    return shapes_module().write_shapes(folder, count, size, seed)


def volumes(folder: Path, count: int = 4, size: tuple[int, int, int] = (12, 16, 16), suffix: str = ".nii.gz",
            seed: int = 0) -> Path:
    """3D cases: a bright ball (label 1) in noise."""
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.indices(size)
    for i in range(count):
        centre = [rng.uniform(3, n - 3) for n in size]
        ball = ((zz - centre[0]) ** 2 + (yy - centre[1]) ** 2 + (xx - centre[2]) ** 2) <= 9
        image = (rng.normal(0, 1, size) + 2.0 * ball).astype(np.float32)
        write(folder / "images" / f"vol_{i}{suffix}", image)
        write(folder / "masks" / f"vol_{i}{suffix}", ball.astype(np.uint8))
    return folder
