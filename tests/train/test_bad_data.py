"""Bad data folders that need a setup (FIFOs, limits, memory): one message each, nothing read past it.

The file-based cases (unpaired files, sizes, labels, corrupt files, the split) are in
tests/corpus/train/, run through ``archgen train`` with their exact messages.
"""

from __future__ import annotations

import os
import shutil
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


@pytest.mark.parametrize("suffix", [".tif", ".png", ".npy"])
def test_images_whose_headers_declare_more_than_memory_are_refused_before_decoding(tmp_path, monkeypatch, suffix):
    """Small compressed files declaring huge images: refused from their headers, before any is decoded."""
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
    assert message(Path("data")) == "--data=data: declares 1.7 MiB of images and masks in the files' headers; " \
                                    "archgen train keeps them in memory, and 1.4 MiB (half the memory free) is the " \
                                    "most it takes"
    assert decoded == []


def test_declared_values_reads_headers_only(tmp_path):
    from tests.train.helpers import write

    for suffix in (".tif", ".png", ".npy", ".nii"):
        path = write(tmp_path / f"a{suffix}", np.zeros((30, 40), np.uint8 if suffix != ".nii" else np.float32))
        assert files.declared_values(path) == 1200, suffix
    assert files.declared_values(write(tmp_path / "b.nii.gz", np.zeros((3, 4), np.float32))) == 0
    (tmp_path / "c.png").write_bytes(b"not a png")
    assert files.declared_values(tmp_path / "c.png") == 0
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "d.tif")
        assert files.declared_values(tmp_path / "d.tif") == 0  # not opened for reading: no blocking
