"""Write the bad data folders of this corpus (run from this folder: python make_cases.py).

Each case is a folder NAME/ run as ``archgen train config.yaml --data NAME -o out -q`` (or
``NAME.yaml`` in place of config.yaml where that file exists); ``NAME.expected`` is the whole of
stderr, exit 2, and ``out`` must not exist afterwards. Images are 16x16 so the files stay tiny.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).parent
SIZE = 16


def png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, optimize=True)


def npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array, allow_pickle=True)


def good(folder: Path, count: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for i in range(count):
        labels = np.zeros((SIZE, SIZE), np.uint8)
        labels[4:10, 3 + i:9 + i] = 1 + i % 2
        png(folder / "images" / f"case_{i}.png", (rng.integers(0, 60, (SIZE, SIZE)) + 80 * labels).astype(np.uint8))
        png(folder / "masks" / f"case_{i}.png", labels)
    return folder


def case(name: str) -> Path:
    folder = HERE / name
    shutil.rmtree(folder, ignore_errors=True)
    return good(folder)


def volume(path: Path, array: np.ndarray) -> None:
    import nibabel

    path.parent.mkdir(parents=True, exist_ok=True)
    nibabel.save(nibabel.Nifti1Image(array, np.eye(4)), str(path))


def main() -> None:
    (case("unpaired_image") / "masks" / "case_1.png").unlink()
    (case("unpaired_mask") / "images" / "case_2.png").unlink()
    png(case("size_mismatch") / "masks" / "case_0.png", np.zeros((SIZE, SIZE - 2), np.uint8))
    png(case("labels_outside_classes") / "masks" / "case_2.png", np.full((SIZE, SIZE), 4, np.uint8))
    folder = case("image_smaller_than_patch")
    png(folder / "images" / "case_1.png", np.zeros((12, SIZE), np.uint8))
    png(folder / "masks" / "case_1.png", np.zeros((12, SIZE), np.uint8))
    (case("corrupt_png") / "images" / "case_0.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing of the sort")
    folder = case("truncated_npy")
    (folder / "images" / "case_0.png").unlink()
    npy(folder / "images" / "case_0.npy", np.zeros((SIZE, SIZE), np.float32))
    raw = (folder / "images" / "case_0.npy").read_bytes()
    (folder / "images" / "case_0.npy").write_bytes(raw[:200])
    folder = case("pickled_npy")
    (folder / "masks" / "case_0.png").unlink()
    npy(folder / "masks" / "case_0.npy", np.array([{"labels": 1}], dtype=object))
    png(case("rgb_image") / "images" / "case_1.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    png(case("rgb_mask") / "masks" / "case_1.png", np.zeros((SIZE, SIZE, 3), np.uint8))
    folder = case("nan_image")
    (folder / "images" / "case_2.png").unlink()
    image = np.zeros((SIZE, SIZE), np.float32)
    image[3, 3] = np.nan
    npy(folder / "images" / "case_2.npy", image)
    folder = case("fractional_mask")
    (folder / "masks" / "case_0.png").unlink()
    npy(folder / "masks" / "case_0.npy", np.full((SIZE, SIZE), 0.5, np.float32))
    (case("unknown_suffix") / "images" / "case_3.jpg").write_bytes(b"\xff\xd8\xff")
    npy(case("duplicate_case") / "images" / "case_0.npy", np.zeros((SIZE, SIZE), np.float32))
    folder = HERE / "empty_validation"
    shutil.rmtree(folder, ignore_errors=True)
    good(folder, count=1)
    folder = HERE / "no_images"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    (folder / "images" / ".gitkeep").write_text("")  # hidden: skipped, as .DS_Store is
    (folder / "masks" / ".gitkeep").write_text("")
    shutil.rmtree(case("no_masks_folder") / "masks")
    (HERE / "data_is_a_file").unlink(missing_ok=True)
    (HERE / "data_is_a_file").write_text("a file, not a folder\n")
    # 3D: volumes against NAME.yaml (an 8x8x8 patch)
    for name in ("volume_smaller_than_patch", "corrupt_nifti"):
        folder = HERE / name
        shutil.rmtree(folder, ignore_errors=True)
        for i in range(3):
            shape = (6, 8, 8) if name == "volume_smaller_than_patch" and i == 1 else (8, 8, 8)
            volume(folder / "images" / f"vol_{i}.nii.gz", np.zeros(shape, np.float32))
            volume(folder / "masks" / f"vol_{i}.nii.gz", np.zeros(shape, np.uint8))
    with gzip.open(HERE / "corrupt_nifti" / "images" / "vol_2.nii.gz", "wb") as handle:
        handle.write(b"not a NIfTI header at all" * 20)


if __name__ == "__main__":
    main()
