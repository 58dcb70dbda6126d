"""Writing outputs without ever leaving a partial file or clobbering one by accident."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from archgen.errors import OutputError


def check_target(path: Path, *, force: bool, suffix: str, folder: bool = False) -> Path:
    """Refuse early (before any expensive work) a target that cannot or must not be written."""
    if not path.name.endswith(suffix):
        raise OutputError(f"must end in {suffix}", path="--output", value=str(path))
    if not path.parent.is_dir():
        raise OutputError(f"folder {str(path.parent)!r} does not exist", path="--output", value=str(path))
    if path.is_dir() != folder and path.exists():
        raise OutputError("is a directory" if path.is_dir() else "is a file", path="--output", value=str(path))
    if path.exists() and not force:
        raise OutputError("already exists; pass --force to overwrite it", path="--output", value=str(path))
    return path


def write_atomic(path: Path, write: Callable[[Path], None], *, suffix: str) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    On any failure the temporary file is removed and an existing ``path`` is left untouched.
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic_dir(path: Path, write: Callable[[Path], None]) -> None:
    """Like ``write_atomic`` for a folder (e.g. a SavedModel): build it beside ``path``, then swap it in.

    An old folder is moved aside first and deleted only once the new one is in place.
    """
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    old = None
    try:
        shutil.rmtree(tmp)  # the exporter wants to create the folder itself
        write(tmp)
        if path.exists():
            old = path.with_name(f"{tmp.name}.old")
            os.replace(path, old)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
