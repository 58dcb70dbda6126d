"""Writing outputs without ever leaving a partial file or clobbering one by accident.

Everything is written to a temporary name beside its target first. Without ``--force`` the
final name is then *claimed* exclusively (a hard link, or ``mkdir`` for a folder), so two
builds racing for one output cannot both win. Several outputs are committed together: if
one cannot be put in place, the ones already placed are taken back and older files restored.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from archgen.errors import OutputError
from archgen.termination import check

MARKER = ".archgen"  # inside a folder archgen wrote (a SavedModel): only such a folder is replaced


def check_target(path: Path, *, force: bool, suffix: str, folder: bool = False) -> Path:
    """Refuse early (before any expensive work) a target that cannot or must not be written."""
    shown = str(path)
    if path.name in ("", ".", "..") or shown.endswith(os.sep):
        raise OutputError("names a folder; expected a file name", path="--output", value=shown)
    if not path.name.endswith(suffix):
        raise OutputError(f"must end in {suffix}", path="--output", value=shown)
    parent = path.parent
    if not parent.is_dir():
        raise OutputError(f"folder {str(parent)!r} does not exist", path="--output", value=shown)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"folder {str(parent)!r} is not writable", path="--output", value=shown)
    if not os.path.lexists(path):  # a dangling link counts as existing: it names something
        return path
    if not force:
        raise OutputError("already exists; pass --force to overwrite it", path="--output", value=shown)
    real_dir = path.is_dir() and not path.is_symlink()
    if folder and path.exists() and not (real_dir and (path / MARKER).is_file()):
        raise OutputError("is not a folder archgen wrote; --force replaces only those", path="--output", value=shown)
    if not folder and real_dir:
        raise OutputError("is a directory", path="--output", value=shown)
    return path


@dataclass
class Staged:
    """An output written under a temporary name beside ``path``, not yet in place."""

    path: Path
    tmp: Path
    folder: bool

    def discard(self) -> None:
        if self.folder:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            self.tmp.unlink(missing_ok=True)


def stage(path: Path, write: Callable[[Path], None], *, suffix: str, folder: bool = False) -> Staged:
    """Call ``write(tmp)`` for a temporary file (or folder) beside ``path``."""
    if folder:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        os.rmdir(tmp)  # exporters want to create the folder themselves
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    staged = Staged(path, tmp, folder)
    try:
        write(tmp)
        check()  # terminated while writing: the file may be whole, but the command is not
        if folder:
            (tmp / MARKER).write_text("written by archgen\n")
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    except BaseException:
        staged.discard()
        raise
    return staged


def commit(items: list[Staged], *, force: bool) -> None:
    """Put every staged output in place, or none of them."""
    placed: list[tuple[Staged, Path | None]] = []
    try:
        check()
        for item in items:
            old = None
            if force and os.path.lexists(item.path):
                old = item.path.with_name(f"{item.tmp.name}.old")
                os.rename(item.path, old)
            try:
                _claim(item)
            except BaseException:
                if old is not None:
                    os.rename(old, item.path)
                raise
            placed.append((item, old))
    except BaseException as exc:
        for item, old in reversed(placed):
            _remove(item.path)
            if old is not None:
                os.rename(old, item.path)
        for item in items:
            item.discard()
        if isinstance(exc, FileExistsError):
            raise OutputError("was created by another process meanwhile; pass --force to overwrite it",
                              path="--output", value=str(exc.filename or "")) from None
        raise
    for _, old in placed:
        if old is not None:
            _remove(old)


def _claim(item: Staged) -> None:
    """Move ``item.tmp`` to ``item.path``, failing with FileExistsError if the name is taken."""
    if item.folder:
        os.mkdir(item.path)  # exclusive; rename then replaces the empty folder
        try:
            os.rename(item.tmp, item.path)
        except BaseException:
            os.rmdir(item.path)
            raise
        return
    try:
        os.link(item.tmp, item.path)
    except FileExistsError:
        raise FileExistsError(17, "exists", str(item.path)) from None
    except OSError:  # a file system without hard links: claim the name, then replace it
        os.close(os.open(item.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        os.replace(item.tmp, item.path)
        return
    item.tmp.unlink()


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def write_atomic(path: Path, write: Callable[[Path], None], *, suffix: str, force: bool = True) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then put it in place (replacing an
    existing file only with ``force``). On any failure nothing is left and ``path`` is untouched."""
    commit([stage(path, write, suffix=suffix)], force=force)


def write_atomic_dir(path: Path, write: Callable[[Path], None], *, force: bool = True) -> None:
    """Like ``write_atomic`` for a folder (e.g. a SavedModel)."""
    commit([stage(path, write, suffix="", folder=True)], force=force)
