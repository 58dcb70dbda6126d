"""Bad data folders that need a setup (FIFOs, limits, memory): one message each, nothing read past it.

The file-based cases (unpaired files, sizes, labels, corrupt files, the split) are in
tests/corpus/train/, run through ``archgen train`` with their exact messages.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from archgen.train import files
from archgen.train.files import DataError
from tests.train.helpers import shapes
from tests.train.test_data import load


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short paths in the messages
    shapes(tmp_path / "data", count=4)
    return Path("data")


def message(folder, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        load(folder, **kwargs)
    return info.value.render()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_the_data_folder_or_an_image_is_refused_without_blocking(folder):
    os.mkfifo("fifo")
    assert message(Path("fifo")) == "--data=fifo: is not a regular folder (a FIFO, device or socket); expected a folder"
    os.remove(folder / "images" / "case_000.png")
    os.mkfifo(folder / "images" / "case_000.png")
    assert message(folder) == "data.images=images/case_000.png: is not a regular file; expected a .png file"


def test_a_folder_of_too_many_entries(folder, monkeypatch):
    monkeypatch.setattr(files, "MAX_FILES", 3)
    assert message(folder) == "data.images=images: holds more than 3 entries; archgen train reads at most that many " \
                              "cases"


def test_a_file_over_the_size_cap(folder, monkeypatch):
    monkeypatch.setattr(files, "MAX_FILE_BYTES", 100)
    size = (folder / "images" / "case_000.png").stat().st_size
    assert message(folder) == f"data.images=images/case_000.png: is {size:,} bytes; an image or mask file may be at " \
                              "most 100 bytes (100 bytes)"


def test_a_file_whose_header_declares_too_many_values(folder, monkeypatch):
    monkeypatch.setattr(files, "MAX_VALUES", 1000)
    assert message(folder) == "data.images=images/case_000.png: declares 1,024 values (32 x 32 x 1); an image or " \
                              "mask may hold at most 1,000"


def test_a_folder_larger_than_memory(folder, monkeypatch):
    import archgen.model_file

    monkeypatch.setattr(archgen.model_file, "available_memory", lambda: 4000)
    on_disk = sum(f.stat().st_size for f in folder.glob("*/*.png"))
    assert message(folder) == f"--data=data: holds {on_disk / 1024:.1f} KiB of images and masks; archgen train keeps " \
                              "them in memory, and 2.0 KiB (half the memory free) is the most it takes"


def test_a_pickled_npy_is_refused_without_unpickling(folder):
    os.remove(folder / "images" / "case_001.png")
    np.save(folder / "images" / "case_001.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    assert message(folder) == "data.images=images/case_001.npy: holds Python objects; archgen reads arrays of " \
                              "numbers only (allow_pickle=False)"


def test_an_unreadable_file(folder, monkeypatch):
    target = folder / "masks" / "case_002.png"
    os.chmod(target, 0)
    if os.geteuid() == 0:  # root reads any file: the kernel's answer to anyone else, given here
        real_open = os.open

        def denied(path, *args, **kwargs):
            if os.fspath(path) == os.fspath(target):
                raise PermissionError(13, "Permission denied", os.fspath(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", denied)
    assert message(folder) == "data.masks=masks/case_002.png: cannot be read: Permission denied"


def test_a_missing_masks_folder(folder):
    shutil.rmtree(folder / "masks")
    assert message(folder) == "data.masks=masks: no such folder"


def test_a_link_to_nothing(folder):
    os.remove(folder / "images" / "case_002.png")
    os.symlink("/nonexistent/case.png", folder / "images" / "case_002.png")
    assert message(folder) == "data.images=images/case_002.png: cannot be read: No such file or directory"


def test_a_file_name_with_a_newline_or_escape_is_escaped_in_the_whole_message(folder):
    os.rename(folder / "images" / "case_000.png", folder / "images" / "a\nb\x1b[31m.png")
    text = message(folder)
    assert "\n" not in text and "\x1b" not in text
    assert text == "data.images='images/a\\nb\\x1b[31m.png': has no mask: no masks/a\\nb\\x1b[31m.* beside it"
    os.rename(folder / "images" / "a\nb\x1b[31m.png", folder / "images" / "case_000.png")
    os.rename(folder / "masks" / "case_000.png", folder / "masks" / "c\nd.png")
    text = message(folder)
    assert "\n" not in text
    assert text.endswith("has no mask: no masks/case_000.* beside it")  # the lone image comes first by name
    shutil.copy(folder / "images" / "case_001.png", folder / "images" / "case_001\n.npy")
    os.rename(folder / "images" / "case_001\n.npy", folder / "images" / "x\ny.npy")
    shutil.copy(folder / "images" / "x\ny.npy", folder / "images" / "x\ny.png")
    text = message(folder)
    assert "\n" not in text and "the same case" in text


# copies of the decoded array each format's reader holds beside the file's bytes
COPIES = {".tif": 1, ".png": 2, ".npy": 0, ".nii.gz": 2}


@pytest.mark.parametrize("suffix", [".tif", ".png", ".npy", ".nii.gz"])
def test_images_whose_headers_declare_more_than_memory_are_refused_before_decoding(tmp_path, monkeypatch, suffix):
    """Small compressed files declaring huge images: refused from their headers, before any is decoded
    (a .nii.gz from the header at the start of its gzip stream)."""
    import archgen.model_file
    from tests.train.helpers import write

    monkeypatch.chdir(tmp_path)
    for i in range(3):
        for sub in ("images", "masks"):
            write(tmp_path / "data" / sub / f"case_{i}{suffix}", np.zeros((300, 400), np.uint8))
    monkeypatch.setattr(archgen.model_file, "available_memory", lambda: 2 * 3 * 300 * 400 * 4)  # images alone fit
    import archgen.train.dataset

    decoded = []
    monkeypatch.setattr(archgen.train.dataset, "read_array",
                        lambda *a: decoded.append(a) or np.zeros((300, 400), np.uint8))
    on_disk = sum(f.stat().st_size for f in Path("data").glob("*/*"))
    assert on_disk < 3 * 300 * 400 * 4  # the check of the files' sizes lets them through
    # held: the images as float32 and the masks as uint8; then two threads each reading a case
    size = (tmp_path / "data" / "images" / f"case_0{suffix}").stat().st_size
    peak = 3 * 300 * 400 * (4 + 1) + 2 * (size + 300 * 400 * COPIES[suffix])
    assert message(Path("data")) == f"--data=data: declares images and masks that take {peak / 2**20:.1f} MiB to " \
                                    "decode and hold (from the files' headers); archgen train keeps them in memory, " \
                                    "and 1.4 MiB (half the memory free) is the most it takes"
    assert decoded == []


def test_the_estimate_counts_the_files_own_type_beside_the_float32_copy(tmp_path, monkeypatch):
    """A float64 TIFF decodes to 8 bytes a value, held beside its float32 copy: 4 bytes a value is not
    the peak (a 1.5 MB zlib file of 14000x14000 float64 peaked at 2.4 GiB)."""
    import tifffile

    import archgen.model_file
    import archgen.train.dataset

    monkeypatch.chdir(tmp_path)
    for i in range(3):
        for sub, dtype in (("images", np.float64), ("masks", np.uint8)):
            (tmp_path / "data" / sub).mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(tmp_path / "data" / sub / f"case_{i}.tif", np.zeros((300, 400), dtype), compression="zlib")
    values = 300 * 400
    held = 3 * values * (4 + 1)  # float32 images, uint8 masks
    monkeypatch.setattr(archgen.model_file, "available_memory", lambda: 2 * (held + values))  # they fit once read
    decoded = []
    monkeypatch.setattr(archgen.train.dataset, "read_array",
                        lambda *a: decoded.append(a) or np.zeros((300, 400), np.uint8))
    size = (tmp_path / "data" / "images" / "case_0.tif").stat().st_size
    peak = held + 2 * (size + values * 8)  # two threads, each with a file's bytes and its float64 array
    assert message(Path("data")) == f"--data=data: declares images and masks that take {peak / 2**20:.1f} MiB to " \
                                    "decode and hold (from the files' headers); archgen train keeps them in memory, " \
                                    f"and {(held + values) / 2**20:.1f} MiB (half the memory free) is the most it takes"
    assert decoded == []


def test_an_npy_is_a_view_of_its_files_bytes(tmp_path):
    """No copy of the data beside the bytes read: np.load would make one."""
    from tests.train.helpers import write

    path = write(tmp_path / "a.npy", np.arange(12, dtype=np.float64).reshape(3, 4))
    array = files.read_array(path, "data.images", "a.npy")
    assert not array.flags.owndata and not array.flags.writeable  # the bytes object's memory
    assert (array == np.arange(12).reshape(3, 4)).all()
    path = write(tmp_path / "f.npy", np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)))
    assert (files.read_array(path, "data.images", "f.npy") == np.arange(12).reshape(3, 4)).all()
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (-16, 16), }"
    (tmp_path / "n.npy").write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + header.ljust(117) + b"\n")
    with pytest.raises(DataError) as info:  # not reshaped to 0x16, -16 taken as "the rest"
        files.read_array(tmp_path / "n.npy", "data.images", "n.npy")
    assert info.value.render() == "data.images=n.npy: cannot be read as .npy: negative dimensions are not allowed"


def test_declared_reads_headers_only(tmp_path):
    import nibabel

    from tests.train.helpers import write

    for suffix, dtype in ((".tif", np.uint16), (".png", np.uint8), (".npy", np.float64), (".nii", np.float32),
                          (".nii.gz", np.int16)):
        path = write(tmp_path / f"a{suffix}", np.zeros((30, 40), dtype))
        assert files.declared(path) == (1200, np.dtype(dtype).itemsize), suffix
    scaled = nibabel.Nifti1Image(np.zeros((3, 4), np.int16), np.eye(4))
    scaled.header.set_slope_inter(2.0, 1.0)
    nibabel.save(scaled, str(tmp_path / "s.nii.gz"))
    assert files.declared(tmp_path / "s.nii.gz") == (12, 8)  # nibabel scales it into float64
    (tmp_path / "b.nii.gz").write_bytes(gzip.compress(b"not a nifti header" * 40))
    assert files.declared(tmp_path / "b.nii.gz") == (0, 0)
    (tmp_path / "c.png").write_bytes(b"not a png")
    assert files.declared(tmp_path / "c.png") == (0, 0)
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "d.tif")
        assert files.declared(tmp_path / "d.tif") == (0, 0)  # not opened for reading: no blocking


# --- TIFF pages ---------------------------------------------------------------------------------

def tiff_pages(path: Path, pages: int, back_to: int | None = None) -> Path:
    """A TIFF of ``pages`` 1x1 pages, written fast (one page's IFD copied, each pointing at the next);
    with ``back_to``, the last page points back at that page (from 1) instead of ending the chain."""
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, np.zeros((1, 1), np.uint8))
    out = bytearray(buffer.getvalue())
    first = struct.unpack("<I", out[4:8])[0]
    tags = struct.unpack("<H", out[first:first + 2])[0]
    ifd, offsets, link = bytes(out[first:first + 2 + 12 * tags]), [first], first + 2 + 12 * tags
    for _ in range(pages - 1):
        offsets.append(len(out))
        out[link:link + 4] = struct.pack("<I", len(out))
        link = len(out) + 2 + 12 * tags
        out += ifd + b"\0\0\0\0"
    if back_to is not None:
        out[link:link + 4] = struct.pack("<I", offsets[back_to - 1])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def test_a_tiff_of_more_pages_than_the_cap_is_refused_before_tifffile_walks_them(folder, monkeypatch):
    """tifffile's walk of the pages into a series is quadratic: 40,000 pages took minutes, twice."""
    import tifffile

    os.remove(folder / "images" / "case_001.png")
    tiff_pages(folder / "images" / "case_001.tif", 20_000)
    monkeypatch.setattr(tifffile.TiffFile, "series", property(lambda self: pytest.fail("tifffile walked the pages")))
    assert message(folder) == "data.images=images/case_001.tif: holds more than 4,096 pages; a TIFF image or mask " \
                              "may have at most 4,096 (a volume's slices)"
    monkeypatch.setattr(files, "MAX_PAGES", 2)
    tiff_pages(folder / "images" / "case_001.tif", 3)
    assert files.declared(folder / "images" / "case_001.tif") == (0, 0)
    assert message(folder) == "data.images=images/case_001.tif: holds more than 2 pages; a TIFF image or mask may " \
                              "have at most 2 (a volume's slices)"


def test_a_tiff_whose_pages_loop_is_refused_without_tifffiles_log(folder, capfd):
    """tifffile logs "invalid circular reference to IFD" on stderr and reads on (a loop after its
    100th page it never notices); archgen refuses the file."""
    os.remove(folder / "images" / "case_001.png")
    tiff_pages(folder / "images" / "case_001.tif", 1, back_to=1)
    assert message(folder) == "data.images=images/case_001.tif: is a damaged TIFF: page 1 leads back to page 1, so " \
                              "its pages never end; expected a chain of pages that ends"
    tiff_pages(folder / "images" / "case_001.tif", 150, back_to=120)
    assert message(folder) == "data.images=images/case_001.tif: is a damaged TIFF: page 150 leads back to page " \
                              "120, so its pages never end; expected a chain of pages that ends"
    raw = bytearray(tiff_pages(folder / "images" / "case_001.tif", 2).read_bytes())
    (folder / "images" / "case_001.tif").write_bytes(bytes(raw[:-10]))  # the last page cut short
    assert message(folder) == "data.images=images/case_001.tif: is a damaged TIFF: page 2 runs past the end of the " \
                              "file (truncated?)"
    assert capfd.readouterr().err == ""
