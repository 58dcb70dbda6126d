"""Finding and reading image and mask files: input from strangers, read within bounds.

The data folder and every file in it are checked as config files are: a folder must be a
folder (a FIFO, device or file named as one is refused), each subfolder lists at most
``MAX_FILES`` entries, each file is a regular file of at most ``MAX_FILE_BYTES`` read without
blocking (``archgen.config.read.read_bounded_file``), and a file's decoded size is checked from
its header before the pixels are decoded (at most ``MAX_VALUES`` values; a .nii.gz inflates to
at most ``MAX_FILE_BYTES``). ``.npy`` files load with ``allow_pickle=False``. Every problem is
one ``DataError`` naming the file, relative to the data folder.

Formats, by suffix: ``.png`` (Pillow), ``.tif``/``.tiff`` (tifffile), ``.npy`` (any rank),
``.nii``/``.nii.gz`` (nibabel, 3D and 4D). Arrays keep their stored axis order; a NIfTI
volume's axes are its voxel axes (i, j, k), as nibabel gives them.
"""

from __future__ import annotations

import io
import os
import re
import stat
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archgen.errors import ArchgenError, did_you_mean, printable

MAX_FILES = 100_000  # entries of one folder
MAX_FILE_BYTES = 4 * 2**30
MAX_VALUES = 2**31 - 1  # values of one decoded array (a 1290^3 volume): NumPy's and Keras's index range
SUFFIXES = (".nii.gz", ".png", ".tif", ".tiff", ".npy", ".nii")
PACKAGES = {".png": "pillow", ".tif": "tifffile", ".tiff": "tifffile", ".nii": "nibabel", ".nii.gz": "nibabel"}


class DataError(ArchgenError):
    """A data folder, image or mask archgen train cannot use."""


@dataclass(frozen=True)
class Pair:
    """One case: an image file and its mask file, paired by name."""

    name: str
    image: Path
    mask: Path


def case_name(filename: str) -> tuple[str, str] | None:
    """``("case_1", ".nii.gz")`` for ``case_1.nii.gz``; None for a suffix archgen does not read."""
    lower = filename.lower()
    for suffix in SUFFIXES:
        if lower.endswith(suffix) and len(filename) > len(suffix):
            return filename[: -len(suffix)], suffix
    return None


def check_folder(path: Path, key: str, shown: str | None = None) -> None:
    """Refuse what is not a folder (missing, a file, a FIFO or device) before listing it."""
    shown = str(path) if shown is None else shown
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise DataError("no such folder", path=key, value=shown) from None
    except OSError as exc:
        raise DataError(f"cannot be read: {exc.strerror}", path=key, value=shown) from None
    if not stat.S_ISDIR(info.st_mode):
        kind = "a file" if stat.S_ISREG(info.st_mode) else "not a regular folder (a FIFO, device or socket)"
        raise DataError(f"is {kind}; expected a folder", path=key, value=shown)


def list_cases(folder: Path, key: str, images: str = "images", masks: str = "masks") -> list[Pair]:
    """The cases of ``folder``: ``images/NAME.*`` paired with ``masks/NAME.*``, sorted by name."""
    check_folder(folder, key)
    found = {sub: _list_files(folder / sub, f"data.{sub}", sub) for sub in (images, masks)}
    image_files, mask_files = found[images], found[masks]
    if not image_files:
        raise DataError(f"holds no images ({', '.join(SUFFIXES)})", path=f"data.{images}", value=images)
    # the first unpaired file by name; "did you mean" offers only files that lack a partner too
    lone_images = sorted(n for n in image_files if n not in mask_files)
    lone_masks = sorted(n for n in mask_files if n not in image_files)
    if lone_images:
        name = lone_images[0]
        raise DataError(printable(f"has no mask: no {masks}/{name}.* beside it{did_you_mean(name, lone_masks)}"),
                        path=f"data.{images}", value=_shown(image_files[name], folder))
    if lone_masks:
        name = lone_masks[0]
        raise DataError(printable(f"has no image: no {images}/{name}.* beside it{did_you_mean(name, lone_images)}"),
                        path=f"data.{masks}", value=_shown(mask_files[name], folder))
    return [Pair(name, image_files[name], mask_files[name]) for name in sorted(image_files)]


def _shown(path: Path, folder: Path) -> str:
    try:
        return str(path.relative_to(folder))
    except ValueError:
        return str(path)


def _list_files(folder: Path, key: str, sub: str) -> dict[str, Path]:
    """{case name: path} of one subfolder; hidden entries (``.DS_Store``) are skipped."""
    check_folder(folder, key, sub)
    out: dict[str, Path] = {}
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_FILES:
                    raise DataError(f"holds more than {MAX_FILES:,} entries; archgen train reads at most that many "
                                    "cases", path=key, value=sub)
                if entry.name.startswith("."):
                    continue
                split = case_name(entry.name)
                shown = f"{sub}/{entry.name}"
                if split is None:
                    raise DataError(f"is not a format archgen reads; expected {', '.join(SUFFIXES)}",
                                    path=f"data.{sub}", value=shown)
                name = split[0]
                if name in out:
                    raise DataError(printable(f"and {sub}/{out[name].name} are the same case; keep one"),
                                    path=f"data.{sub}",
                                    value=shown)
                out[name] = Path(entry.path)
    except OSError as exc:
        raise DataError(f"cannot be listed: {exc.strerror}", path=key, value=sub) from None
    return out


def read_array(path: Path, key: str, shown: str) -> np.ndarray:
    """The array a file holds, checked and decoded within bounds (see the module's docstring)."""
    from archgen.errors import SpecError
    from archgen.config.read import read_bounded_file

    suffix = case_name(path.name)[1]
    try:
        raw = read_bounded_file(path, key=key, max_bytes=MAX_FILE_BYTES, expected=f"a {suffix} file",
                                noun="an image or mask file")
    except SpecError as exc:
        raise DataError(exc.message, path=key, value=shown) from None
    try:
        array = _DECODERS[suffix](raw, suffix)
    except DataError as exc:
        raise DataError(exc.message, path=key, value=shown) from None
    except ImportError:
        raise DataError(f"reading {suffix} files needs {PACKAGES[suffix]}: pip install 'archgen[train]'", path=key,
                        value=shown) from None
    except MemoryError:
        raise DataError("is too large to decode in the memory this machine has free", path=key, value=shown) from None
    except Exception as exc:  # noqa: BLE001 - decoders raise many kinds for a corrupt file; the user needs one line
        text = re.sub(r" ?<[^<>]* at 0x[0-9a-f]+>", "", " ".join(str(exc).split()))[:200] or type(exc).__name__
        raise DataError(f"cannot be read as {suffix}: {text}", path=key, value=shown) from None
    if array.dtype.kind not in "biuf":
        raise DataError(f"holds {array.dtype} values; expected numbers", path=key, value=shown)
    return array


def declared_values(path: Path) -> int:
    """How many values ``path`` declares in its header (.png, .tif/.tiff, .npy, .nii), read without
    decoding the pixels; 0 where that cannot be told cheaply (a .nii.gz) or the file is not a regular,
    readable one (``read_array`` then reports it in its turn). Opened without blocking: a FIFO is never
    waited on."""
    split = case_name(path.name)
    if split is None or split[1] == ".nii.gz":
        return 0
    suffix = split[1]
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0
    try:
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return 0
            shape = _header_shape(handle, suffix, path.name)
    except Exception:  # noqa: BLE001 - a damaged header: read_array words it
        return 0
    return int(np.prod(shape, dtype=np.float64)) if shape is not None else 0


def _header_shape(handle, suffix: str, name: str) -> tuple[int, ...] | None:
    if suffix == ".png":
        from PIL import Image

        with Image.open(handle) as image:
            return (image.size[1], image.size[0], len(image.getbands()))
    if suffix in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(handle, name=name) as tiff:  # the pages' tags only, not their data
            return tuple(tiff.series[0].shape) if tiff.series else None
    if suffix == ".npy":
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        return tuple(read_header(handle)[0])
    if suffix == ".nii":
        import nibabel

        head = handle.read(540)
        for kind in (nibabel.Nifti1Header, nibabel.Nifti2Header):
            try:
                with _quiet_nibabel():
                    return tuple(kind.from_fileobj(io.BytesIO(head), check=False).get_data_shape())
            except Exception:  # noqa: BLE001 - not this kind
                continue
    return None


def _check_values(shape: tuple[int, ...]) -> None:
    count = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if count > MAX_VALUES:
        raise DataError(f"declares {count:,} values ({' x '.join(map(str, shape))}); an image or mask may hold at "
                        f"most {MAX_VALUES:,}")


def _npy(raw: bytes, suffix: str) -> np.ndarray:
    handle = io.BytesIO(raw)
    version = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = read_header(handle)  # the header alone: the shape and type before any data
    if dtype.hasobject:
        raise DataError("holds Python objects; archgen reads arrays of numbers only (allow_pickle=False)")
    _check_values(shape)
    return np.load(io.BytesIO(raw), allow_pickle=False)


def _png(raw: bytes, suffix: str) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(raw)) as image:
        if image.format != "PNG":
            raise DataError(f"is a {image.format} image, not a PNG")
        _check_values((image.size[0], image.size[1], len(image.getbands())))
        if image.mode == "P":  # a palette image: the indices are the labels
            return np.asarray(image)
        if image.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(image).astype(np.uint16)
        return np.asarray(image)


def _tiff(raw: bytes, suffix: str) -> np.ndarray:
    import tifffile

    with tifffile.TiffFile(io.BytesIO(raw)) as tiff:
        if not tiff.series:
            raise DataError("holds no image")
        _check_values(tuple(tiff.series[0].shape))
        return tiff.series[0].asarray()


def _nifti(raw: bytes, suffix: str) -> np.ndarray:
    import nibabel

    if suffix == ".nii.gz":
        import gzip
        import zlib

        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as handle:
                raw = handle.read(MAX_FILE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"is not a readable gzip file: {exc}") from None
        if len(raw) > MAX_FILE_BYTES:
            raise DataError(f"inflates to more than {MAX_FILE_BYTES:,} bytes")
    image = None
    for kind in (nibabel.Nifti1Image, nibabel.Nifti2Image):
        try:
            with _quiet_nibabel():
                image = kind.from_bytes(raw)
            break
        except Exception:  # noqa: BLE001 - not this kind; the other is tried
            image = None
    if image is None:
        raise DataError("is not a NIfTI-1 or NIfTI-2 file")
    _check_values(tuple(image.shape))
    return np.asarray(image.dataobj)


_NIBABEL_LOG = threading.Lock()


@contextmanager
def _quiet_nibabel():
    """nibabel logs its checks of a bad header ("sizeof_hdr should be 348") on stderr; the error
    archgen raises says it in one line. (Removing the handler is not enough: Python's last-resort
    handler would print the warning.)"""
    import logging

    from nibabel.imageglobals import logger

    with _NIBABEL_LOG:
        level = logger.level
        logger.setLevel(logging.CRITICAL)
        try:
            yield
        finally:
            logger.setLevel(level)


_DECODERS = {".npy": _npy, ".png": _png, ".tif": _tiff, ".tiff": _tiff, ".nii": _nifti, ".nii.gz": _nifti}
