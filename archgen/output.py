"""Writing outputs without ever leaving a partial file or clobbering one by accident.

Everything is written to a temporary name beside its target first. Without ``--force`` the
final name is then *claimed* exclusively (a hard link, or ``mkdir`` for a folder), so two
builds racing for one output cannot both win. Several outputs are committed together: if
one cannot be put in place, the ones already placed are taken back and older files restored.

The storage refusing a write (a full disk, a quota, a read-only or pseudo file system, an
I/O error, no permission) is an ``OutputError`` naming the target, with nothing left behind.
A temporary name carries its writer's process id (``.<stem>.<pid>-<host>.<random>.tmp<suffix>``):
a writer killed outright (SIGKILL, the OOM killer) leaves its file, and the next write to the
same target removes it once that process is gone.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

from archgen.errors import ArchgenError, OutputError, printable
from archgen.termination import check, held

MARKER = ".archgen"  # inside a folder archgen wrote (a SavedModel): only such a folder is replaced


def check_target(path: Path, *, force: bool, suffix: str, folder: bool = False,
                 inputs: Mapping[str, Any] | None = None) -> Path:
    """Refuse early (before any expensive work) a target that cannot or must not be written:
    ``inputs`` names the files the command reads ({what: path}), which --force does not replace."""
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
    with held():  # os.access says yes to root and in /proc: creating a file tells
        _remove(_make_tmp(path, suffix, folder))
    if not os.path.lexists(path):  # a dangling link counts as existing: it names something
        return path
    for what, source in (inputs or {}).items():
        if source is not None and _same_file(path, source):
            raise OutputError(f"is the {what} this command reads; write elsewhere", path="--output", value=shown)
    if not force:
        raise OutputError("already exists; pass --force to overwrite it", path="--output", value=shown)
    real_dir = path.is_dir() and not path.is_symlink()
    if folder and path.exists() and not (real_dir and (path / MARKER).is_file()):
        raise OutputError("is not a folder archgen wrote; --force replaces only those", path="--output", value=shown)
    if not folder and real_dir:
        raise OutputError("is a directory", path="--output", value=shown)
    return path


def _same_file(a: Any, b: Any) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):  # one of them does not exist, or cannot be named
        return False


@dataclass
class Staged:
    """An output written under a temporary name beside ``path``, not yet in place."""

    path: Path
    tmp: Path
    folder: bool

    def discard(self) -> None:
        if self.folder:
            # an exporter interrupted mid-write may still have a thread adding files: remove until gone
            for _ in range(50):
                shutil.rmtree(self.tmp, ignore_errors=True)
                if not os.path.lexists(self.tmp):
                    break
                time.sleep(0.1)
        else:
            try:
                self.tmp.unlink(missing_ok=True)
            except OSError:  # a read-only file system took nothing, so there is nothing to take back
                pass


# errno values meaning the storage refused the write: the user's to fix, not a bug of ours
STORAGE_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EDQUOT", "EROFS", "EIO", "EFBIG", "EACCES", "EPERM", "ENXIO", "ENODEV", "ESTALE", "EMFILE",
    "ENFILE", "ENAMETOOLONG") if hasattr(errno, name))
_STORAGE_TEXTS = tuple(os.strerror(code) for code in STORAGE_ERRNOS if code not in (errno.EACCES, errno.EPERM))


def storage_error(exc: BaseException) -> str | None:
    """What the storage said (``No space left on device``) if ``exc`` is, or wraps, its refusal;
    None for anything else. Libraries wrap the OSError (or only keep its text), so the chain of
    causes and the messages are read too."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in STORAGE_ERRNOS:
            return exc.strerror or os.strerror(exc.errno)
        text = str(exc)
        for known in _STORAGE_TEXTS:
            if known in text:
                return known
        exc = exc.__cause__ or exc.__context__
    return None


def _make_tmp(path: Path, suffix: str, folder: bool) -> Path:
    """A new empty temporary file (folder) beside ``path``, named as ``leftover_pattern`` says."""
    prefix = f".{path.name if folder else path.stem}.{os.getpid()}-{_host_tag()}."
    try:
        if folder:
            return Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=path.parent))
        fd, name = tempfile.mkstemp(prefix=prefix, suffix=".tmp" + suffix, dir=path.parent)
        os.close(fd)
        return Path(name)
    except OSError as exc:  # os.access may say yes (root, /proc) where creating a file fails
        reason = exc.strerror or type(exc).__name__
        raise _named(path, f"cannot write in folder {str(path.parent)!r}: {reason}") from None


def _refused(path: Path, reason: str) -> OutputError:
    return _named(path, f"cannot be written: {reason}; nothing was written")


def _named(path: Path, message: str) -> OutputError:
    """An OutputError naming the whole file: a long path (a sweep job's) would be cut as a value."""
    shown = str(path)
    if len(shown) <= 60 and shown.isprintable():
        return OutputError(message, path="--output", value=shown)
    return OutputError(f"{printable(shown, 1000)}: {message}", path="--output")


def stage(path: Path, write: Callable[[Path], None], *, suffix: str, folder: bool = False,
          into: list[Staged]) -> None:
    """Call ``write(tmp)`` for a temporary file (or folder) beside ``path``; the staged output is
    appended to ``into`` as its file is created, so a caller can always take back what exists."""
    _remove_leftovers(path, suffix, folder)
    staged = None
    try:
        with held():  # a SIGTERM between creating the file and naming it here would leave it behind
            staged = Staged(path, _make_tmp(path, suffix, folder), folder)
            into.append(staged)
        tmp = staged.tmp
        if folder:
            os.rmdir(tmp)  # exporters want to create the folder themselves
        write(tmp)
        check()  # terminated while writing: the file may be whole, but the command is not
        if folder:
            (tmp / MARKER).write_text("written by archgen\n")
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
    except BaseException as exc:
        if staged is not None:
            with held():
                staged.discard()
        reason = storage_error(exc) if isinstance(exc, Exception) and not isinstance(exc, ArchgenError) else None
        if reason is not None:
            raise _refused(path, reason) from None
        raise


def commit(items: list[Staged], *, force: bool) -> None:
    """Put every staged output in place, or none of them."""
    placed: list[tuple[Staged, Path | None]] = []
    current = items[0].path if items else None
    try:
        check()
        for item in items:
            current = item.path
            with held():  # each output is moved and recorded whole, so that it can be taken back
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
        with held():
            for item, old in reversed(placed):
                _remove(item.path)
                if old is not None:
                    os.rename(old, item.path)
            for item in items:
                item.discard()
        if isinstance(exc, FileExistsError):
            raise OutputError("was created by another process meanwhile; pass --force to overwrite it",
                              path="--output", value=str(exc.filename or "")) from None
        if isinstance(exc, OSError):  # renaming or linking refused: the targets are as they were
            raise _refused(current, exc.strerror or type(exc).__name__) from None
        raise
    with held():
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
    except OSError as exc:  # a file system without hard links: claim the name, then replace it
        if exc.errno in STORAGE_ERRNOS - {errno.EPERM, errno.EACCES}:  # full, read-only, failing: no other way
            raise
        os.close(os.open(item.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        try:
            os.replace(item.tmp, item.path)
        except BaseException:
            item.path.unlink(missing_ok=True)  # the empty file that claimed the name
            raise
        return
    try:
        item.tmp.unlink()
    except OSError:  # the output is in place; the extra name goes with the next write to this target
        pass


# Leftovers of killed writers -------------------------------------------------------------------

LEFTOVER_AGE = 24 * 3600  # a leftover from another machine (or boot) is removed only this long untouched


@functools.cache
def _host_tag() -> str:
    """Eight hex digits naming where a process id means something: this host, this boot and this
    PID namespace (a container). A leftover with another tag is never judged by its process id."""
    import platform
    import zlib

    parts = [platform.node()]
    try:
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    except OSError:
        pass
    try:
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    except OSError:
        pass
    return f"{zlib.crc32('|'.join(parts).encode()):08x}"


def _alive(pid: int) -> bool:
    """False only when no process ``pid`` exists here; True when it does or it cannot be told."""
    if os.name != "posix" or pid <= 0:  # Windows: os.kill(pid, 0) would end the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # EPERM: it exists and belongs to someone else
        return True
    return True


def leftover_pattern(path: Path, suffix: str, folder: bool = False) -> re.Pattern[str]:
    """The temporary names ``stage`` gives ``path``'s outputs, and nothing else: the writer's pid
    and host tag, then tempfile's eight random characters."""
    head = re.escape(f".{path.name if folder else path.stem}.")
    tail = re.escape(".tmp" if folder else ".tmp" + suffix)
    return re.compile(head + r"(\d{1,10})-([0-9a-f]{8})\.[a-z0-9_]{8}" + tail + r"\Z")


def _remove_leftovers(path: Path, suffix: str, folder: bool) -> None:
    """Remove temporary files (folders) of earlier writes to ``path`` whose writer is gone: named
    by ``leftover_pattern`` and made on this host by a process that no longer exists, or made
    elsewhere and untouched for ``LEFTOVER_AGE``. Never anything else; never fails the write."""
    pattern = leftover_pattern(path, suffix, folder)
    try:
        with os.scandir(path.parent) as entries:
            found = [(entry, match) for entry in entries if (match := pattern.match(entry.name))]
    except OSError:
        return
    for entry, match in found:
        try:
            kind_ok = entry.is_dir(follow_symlinks=False) if folder else entry.is_file(follow_symlinks=False)
            if not kind_ok:
                continue  # a link, or not the kind of thing this target writes
            if match.group(2) == _host_tag():
                if _alive(int(match.group(1))):
                    continue
            elif time.time() - _newest_mtime(entry.path, folder) < LEFTOVER_AGE:
                continue
            if folder:
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            continue


def _newest_mtime(path: str, folder: bool) -> float:
    newest = os.lstat(path).st_mtime
    if folder:
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, name)).st_mtime)
                except OSError:
                    pass
    return newest


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Output(NamedTuple):
    """One output of ``write_together``: ``write(tmp)`` fills a temporary file (folder) for ``path``."""

    path: Path
    write: Callable[[Path], None]
    suffix: str
    folder: bool = False


def write_together(outputs: list[Output], *, force: bool) -> None:
    """Write every output under a temporary name, then put them all in place together: a failure
    (or SIGTERM) anywhere leaves no temporary file and no partial set."""
    staged: list[Staged] = []
    try:
        for out in outputs:
            stage(out.path, out.write, suffix=out.suffix, folder=out.folder, into=staged)
    except BaseException:
        with held():
            for item in staged:
                item.discard()
        raise
    commit(staged, force=force)


def write_atomic(path: Path, write: Callable[[Path], None], *, suffix: str, force: bool = True) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then put it in place (replacing an
    existing file only with ``force``). On any failure nothing is left and ``path`` is untouched."""
    write_together([Output(path, write, suffix)], force=force)


def write_atomic_dir(path: Path, write: Callable[[Path], None], *, force: bool = True) -> None:
    """Like ``write_atomic`` for a folder (e.g. a SavedModel)."""
    write_together([Output(path, write, "", folder=True)], force=force)
