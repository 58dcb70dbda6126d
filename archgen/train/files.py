"""Finding and reading image and mask files: input from strangers, read within bounds.

The data folder and every file in it are checked as config files are: a folder must be a
folder (a FIFO, device or file named as one is refused), each subfolder lists at most
``MAX_FILES`` entries, each file is a regular file of at most ``MAX_FILE_BYTES`` read without
blocking (``archgen.config.read.read_bounded_file``), and a file's decoded size is checked from
its header before the pixels are decoded (at most ``MAX_VALUES`` values; a .nii.gz inflates to
at most ``MAX_FILE_BYTES``; a TIFF has at most ``MAX_PAGES`` pages, in a chain that does not
loop). ``.npy`` files load with ``allow_pickle=False``. Every problem is one ``DataError``
naming the file, relative to the data folder, and the decoders' own log lines and warnings are
kept off stderr.

Formats, by suffix: ``.png`` (Pillow), ``.tif``/``.tiff`` (tifffile), ``.npy`` (any rank),
``.nii``/``.nii.gz`` (nibabel, 3D and 4D). Arrays keep their stored axis order; a NIfTI
volume's axes are its voxel axes (i, j, k), as nibabel gives them.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import stat
import struct
import threading
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from archgen.errors import ArchgenError, did_you_mean, printable

MAX_FILES = 100_000  # entries of one folder
MAX_FILE_BYTES = 4 * 2**30
MAX_VALUES = 2**31 - 1  # values of one decoded array (a 1290^3 volume): NumPy's and Keras's index range
# pages (IFDs) of one TIFF: a training image has at most a few thousand slices, and tifffile's
# walk of the pages into a series takes time quadratic in their count (40,000 pages: minutes)
MAX_PAGES = 4_096
SUFFIXES = (".nii.gz", ".png", ".tif", ".tiff", ".npy", ".nii")
# copies of its decoded array a decoder holds at once beside the file's bytes: none for a .npy (a
# view of the bytes), tifffile's array, Pillow's and NumPy's, nibabel's read and its scaled or
# inflated one
DECODED_COPIES = {".npy": 0, ".tif": 1, ".tiff": 1, ".png": 2, ".nii": 2, ".nii.gz": 2}
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
    # the keys are the options' (data.images), whatever the folders are called
    image_files = _list_files(folder / images, "data.images", images)
    mask_files = _list_files(folder / masks, "data.masks", masks)
    if not image_files:
        raise DataError(f"holds no images ({', '.join(SUFFIXES)})", path="data.images", value=images)
    # the first unpaired file by name; "did you mean" offers only files that lack a partner too
    lone_images = sorted(n for n in image_files if n not in mask_files)
    lone_masks = sorted(n for n in mask_files if n not in image_files)
    if lone_images:
        name = lone_images[0]
        raise DataError(printable(f"has no mask: no {masks}/{name}.* beside it{did_you_mean(name, lone_masks)}"),
                        path="data.images", value=_shown(image_files[name], folder))
    if lone_masks:
        name = lone_masks[0]
        raise DataError(printable(f"has no image: no {images}/{name}.* beside it{did_you_mean(name, lone_images)}"),
                        path="data.masks", value=_shown(mask_files[name], folder))
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
                                    path=key, value=shown)
                name = split[0]
                if name in out:
                    raise DataError(printable(f"and {sub}/{out[name].name} are the same case; keep one"),
                                    path=key, value=shown)
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


def declared(path: Path) -> tuple[int, int]:
    """``(values, bytes a value)`` that ``path`` declares in its header, read without decoding the
    pixels (a .nii.gz: its header's bytes alone inflated); the bytes a value are those of the array
    the decoder makes (8 for a NIfTI that nibabel scales to float64). ``(0, 0)`` where the header
    cannot be read or the file is not a regular, readable one (``read_array`` then reports it in its
    turn). Opened without blocking: a FIFO is never waited on."""
    split = case_name(path.name)
    if split is None:
        return 0, 0
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return 0, 0
    try:
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                return 0, 0
            header = _header(handle, split[1], path.name)
    except Exception:  # noqa: BLE001 - a damaged header: read_array words it
        return 0, 0
    if header is None:
        return 0, 0
    shape, itemsize = header
    return max(0, math.prod(int(n) for n in shape)), itemsize  # Python's integers: no overflow


def _header(handle, suffix: str, name: str) -> tuple[tuple[int, ...], int] | None:
    """The shape and bytes a value the header of an open file declares."""
    if suffix == ".png":
        with _open_png(handle) as image:
            return (image.size[1], image.size[0], len(image.getbands())), _png_itemsize(image.mode)
    if suffix in (".tif", ".tiff"):
        import tifffile

        _check_pages(handle)  # before tifffile walks them
        with _quiet("tifffile"), tifffile.TiffFile(handle, name=name) as tiff:  # the pages' tags, not their data
            return (tuple(tiff.series[0].shape), tiff.series[0].dtype.itemsize) if tiff.series else None
    if suffix == ".npy":
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(handle)
        return tuple(shape), dtype.itemsize
    if suffix in (".nii", ".nii.gz"):
        import nibabel

        head = handle.read(_NIFTI_HEADER) if suffix == ".nii" else _inflate_head(handle, _NIFTI_HEADER)
        for kind in (nibabel.Nifti1Header, nibabel.Nifti2Header):
            try:
                with _quiet(_NIBABEL_LOGGER), _no_warnings():
                    header = kind.from_fileobj(io.BytesIO(head), check=False)
                    shape, dtype = tuple(header.get_data_shape()), header.get_data_dtype()
                    scaled = header.get_slope_inter() not in ((None, None), (1.0, 0.0))
            except Exception:  # noqa: BLE001 - not this kind
                continue
            return shape, 8 if scaled else dtype.itemsize  # nibabel applies a slope or intercept in float64
    return None


_NIFTI_HEADER = 540  # bytes: a NIfTI-2 header (a NIfTI-1 header is 348)


def _inflate_head(handle, size: int) -> bytes:
    """The first ``size`` bytes a gzip file inflates to, inflating no more than those (zlib's
    ``max_length``): a few KB of a .nii.gz can inflate to gigabytes, and its header is at the start."""
    import zlib

    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip's header and trailer
    out = b""
    while len(out) < size and not inflate.eof:
        chunk = inflate.unconsumed_tail or handle.read(1 << 16)
        if not chunk:
            break
        out += inflate.decompress(chunk, size - len(out))
    return out


def _png_itemsize(mode: str) -> int:
    """Bytes a value of the array ``_png`` makes of a Pillow image of ``mode``."""
    return 4 if mode in ("I", "F") else 2 if mode.startswith("I;16") else 1


def _check_pages(handle) -> None:
    """Walk a TIFF's chain of pages (IFDs) from its header, before tifffile does, and refuse more than
    ``MAX_PAGES`` of them, a chain that loops (tifffile notices only some loops, logs them and reads
    on) or one that leads past the end of the file. A file that is not a TIFF is left to tifffile
    to word. Leaves ``handle`` at its start."""
    size = handle.seek(0, os.SEEK_END)
    handle.seek(0)
    head = handle.read(16)
    handle.seek(0)
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        return
    order = "<" if head[:2] == b"II" else ">"
    if struct.unpack(order + "H", head[2:4])[0] == 43:  # BigTIFF: 8-byte tag counts and offsets
        count, entry, link = struct.Struct(order + "Q"), 20, struct.Struct(order + "Q")
        offset = link.unpack(head[8:16])[0] if len(head) == 16 else 0
    else:
        count, entry, link = struct.Struct(order + "H"), 12, struct.Struct(order + "I")
        offset = link.unpack(head[4:8])[0]
    pages: dict[int, int] = {}  # offset -> page number, from 1
    while offset:
        if offset in pages:
            raise DataError(f"is a damaged TIFF: page {len(pages)} leads back to page {pages[offset]}, so its pages "
                            "never end; expected a chain of pages that ends")
        if len(pages) == MAX_PAGES:
            raise DataError(f"holds more than {MAX_PAGES:,} pages; a TIFF image or mask may have at most "
                            f"{MAX_PAGES:,} (a volume's slices)")
        pages[offset] = len(pages) + 1
        end = offset + count.size
        if end <= size:
            handle.seek(offset)
            end += count.unpack(handle.read(count.size))[0] * entry
        if end + link.size > size:
            raise DataError(f"is a damaged TIFF: page {len(pages)} runs past the end of the file (truncated?)")
        handle.seek(end)
        offset = link.unpack(handle.read(link.size))[0]
    handle.seek(0)


def _open_png(handle):
    """``Image.open``, without Pillow's DecompressionBombWarning on stderr for an image over 89M
    pixels: archgen checks the size itself (``MAX_VALUES``, and the memory free)."""
    from PIL import Image

    with _no_warnings(Image.DecompressionBombWarning):
        return Image.open(handle)


def _check_values(shape: tuple[int, ...]) -> None:
    count = int(np.prod(shape, dtype=np.float64)) if shape else 1
    if count > MAX_VALUES:
        raise DataError(f"declares {count:,} values ({' x '.join(map(str, shape))}); an image or mask may hold at "
                        f"most {MAX_VALUES:,}")


def _npy(raw: bytes, suffix: str) -> np.ndarray:
    handle = io.BytesIO(raw)
    version = np.lib.format.read_magic(handle)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(handle)  # the header alone: the shape and type before any data
    if dtype.hasobject:
        raise DataError("holds Python objects; archgen reads arrays of numbers only (allow_pickle=False)")
    if dtype.kind not in "biuf":
        raise DataError(f"holds {dtype} values; expected numbers")
    _check_values(shape)
    # a view of the file's bytes, not np.load's copy of them: one copy of the file fewer at the peak
    # (read-only: the reader makes its float32 image or its labels from it)
    if any(n < 0 for n in shape):  # reshape would take one as "the rest"
        raise ValueError("negative dimensions are not allowed")  # np.load's words
    count, start = math.prod(shape), handle.tell()
    if len(raw) - start < count * dtype.itemsize:
        raise ValueError(f"EOF: reading array data, expected {count * dtype.itemsize} bytes got {len(raw) - start}")
    return np.frombuffer(raw, dtype, count, start).reshape(shape, order="F" if fortran else "C")


def _png(raw: bytes, suffix: str) -> np.ndarray:
    with _open_png(io.BytesIO(raw)) as image:
        if image.format != "PNG":
            raise DataError(f"is a {image.format} image, not a PNG")
        _check_values((image.size[0], image.size[1], len(image.getbands())))
        if image.mode == "P":  # a palette image: the indices are the labels
            return np.asarray(image)
        if image.mode in ("I;16", "I;16B", "I;16L"):
            return np.asarray(image).astype(np.uint16, copy=False)
        return np.asarray(image)


def _tiff(raw: bytes, suffix: str) -> np.ndarray:
    import tifffile

    handle = io.BytesIO(raw)
    _check_pages(handle)  # before tifffile walks them
    with _quiet("tifffile"), tifffile.TiffFile(handle) as tiff:
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
            with _quiet(_NIBABEL_LOGGER), _no_warnings():  # the header's parse, not the data's read
                image = kind.from_bytes(raw)
            break
        except Exception:  # noqa: BLE001 - not this kind; the other is tried
            image = None
    if image is None:
        raise DataError("is not a NIfTI-1 or NIfTI-2 file")
    _check_values(tuple(image.shape))
    return np.asarray(image.dataobj)


_NIBABEL_LOGGER = "nibabel.global"  # nibabel.imageglobals.logger
_QUIET = threading.Lock()
_QUIETED: dict[str, tuple[int, int]] = {}  # logger name -> (readers inside, its level before)


@contextmanager
def _quiet(name: str):
    """Keep a decoder's log lines off stderr (nibabel's "sizeof_hdr should be 348", tifffile's
    "invalid page offset"): the error archgen raises says it in one line. (Removing the handler is
    not enough: Python's last-resort handler would print the warning.) Counted, so readers in
    several threads decode at once and the last one out restores the level."""
    logger = logging.getLogger(name)
    with _QUIET:
        inside, level = _QUIETED.get(name, (0, logger.level))
        _QUIETED[name] = (inside + 1, level)
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        with _QUIET:
            inside, level = _QUIETED.pop(name)
            if inside > 1:
                _QUIETED[name] = (inside - 1, level)
            else:
                logger.setLevel(level)


_WARNINGS = threading.Lock()


@contextmanager
def _no_warnings(category: type[Warning] = Warning):
    """Keep a decoder's warnings of ``category`` off stderr (Pillow's DecompressionBombWarning,
    nibabel's "Extension size is not a multiple of 16 bytes"): the error archgen raises says it in
    one line. Locked, and so kept to a header's parse: the warning filters are the process's, and
    two threads must not swap them at once."""
    with _WARNINGS, warnings.catch_warnings():
        warnings.simplefilter("ignore", category)
        yield


_DECODERS = {".npy": _npy, ".png": _png, ".tif": _tiff, ".tiff": _tiff, ".nii": _nifti, ".nii.gz": _nifti}
