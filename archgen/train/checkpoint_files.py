"""The files of a training checkpoint, read as input from a stranger: what kind of file each path
is (never a link, a FIFO where a file belongs, or a folder without archgen's marker),
``state.json`` checked whole (types, finite numbers, ranges, its step the one its folder names), and
``optimizer.npz`` read member by member after its ``.npy`` headers were checked against the
optimizer's variables, so a small file cannot claim a huge array.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from archgen.errors import ArchgenError, format_value, printable

STEP_MARKER = ".archgen"  # archgen.output.MARKER: written into every checkpoint folder archgen makes
MAX_STEPS = 10**9  # train.steps may be at most this
MAX_LOG_COLUMNS = 1_000  # of one row of state.json's log


class RunError(ArchgenError):
    """A run folder that cannot be started, replaced or resumed."""


@dataclass
class State:
    """Where a run stands after an epoch."""

    epoch: int = 0  # epochs done
    step: int = 0  # steps done
    seconds: float = 0.0  # wall time of every session so far
    best: dict[str, Any] = field(default_factory=dict)  # {"metric", "value", "epoch", "step"}
    log: list[dict[str, Any]] = field(default_factory=list)  # the rows of log.csv


def shown_path(path: Path) -> str:
    return printable(str(path), 1000)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISREG(mode):
        return "a file"
    return "a FIFO, device or socket"


def check_kind(path: Path, *, folder: bool) -> None:
    """Refuse ``path`` unless it is missing or a real folder (``folder``) or regular file: never a link."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise RunError(f"cannot be read: {exc.strerror}", path="--output", value=str(path)) from None
    good = stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode)
    if not good:
        expected = "a folder" if folder else "a file"
        raise RunError(f"is {_kind(mode)}, where archgen train keeps {expected}; it is left as it is: move it out "
                       "of the run folder, or choose another run folder", path="--output", value=str(path))


def is_checkpoint(folder: Path) -> bool:
    """A real folder (not a link) holding archgen's marker file."""
    try:
        return stat.S_ISDIR(os.lstat(folder).st_mode) and stat.S_ISREG(os.lstat(folder / STEP_MARKER).st_mode)
    except OSError:
        return False


def open_regular_file(path: Path):
    """A checkpoint file opened for reading (binary), refused unless it is a regular file: not a link,
    FIFO or device (opened without blocking and without following a link, then checked)."""
    check_kind(path, folder=False)
    if not os.path.lexists(path):
        raise RunError("is missing: the checkpoint is damaged; start over with --force", path=shown_path(path))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise RunError(f"cannot be read: {exc.strerror}", path=shown_path(path)) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RunError("is not a regular file; expected a checkpoint file", path=shown_path(path))
    return os.fdopen(fd, "rb")


def check_readable_file(path: Path) -> None:
    """``open_regular_file``'s checks, for a file another library opens by its path."""
    open_regular_file(path).close()


def read_optimizer(path: Path, variables: list) -> list[np.ndarray]:
    """The arrays of optimizer.npz, one per variable: every member's .npy header (its shape and type)
    is checked against the variable before any array is read, so a small file cannot claim a huge one."""
    damaged = "start over with --force"
    with open_regular_file(path) as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise RunError(f"is not a readable .npz file ({printable(str(exc), 100)}); {damaged}",
                           path=shown_path(path)) from None
        with archive:
            members = {info.filename: info for info in archive.infolist()}
            expected_names = [f"v{i}.npy" for i in range(len(variables))]
            if sorted(members) != sorted(expected_names):
                raise RunError(f"holds {len(members):,} arrays where this network's optimizer has "
                               f"{len(variables):,} variables (v0..v{len(variables) - 1}); it does not fit this "
                               f"network; {damaged}", path=shown_path(path))
            values = []
            for name, variable in zip(expected_names, variables):
                shape = tuple(int(n) for n in variable.shape)
                dtype = np.dtype(_standard_dtype(variable.dtype))
                info = members[name]
                limit = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + 64 * 1024  # the data and a header
                if info.file_size > limit:
                    raise RunError(f"{name} holds {info.file_size:,} bytes where variable {printable(variable.path)} "
                                   f"takes {limit:,} at most; it does not fit this network; {damaged}",
                                   path=shown_path(path))
                try:
                    with archive.open(info) as member:
                        version = np.lib.format.read_magic(member)
                        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                       else np.lib.format.read_array_header_2_0)
                        got_shape, fortran, got_dtype = read_header(member, max_header_size=10_000)
                        if tuple(got_shape) != shape or got_dtype != dtype:
                            raise RunError(f"{name} declares {got_dtype} {format_value(list(got_shape))} where "
                                           f"variable {printable(variable.path)} is {dtype} "
                                           f"{format_value(list(shape))}; it does not fit this network; {damaged}",
                                           path=shown_path(path))
                        count = int(np.prod(shape, dtype=np.int64))
                        data = member.read(count * dtype.itemsize)
                except RunError:
                    raise
                except Exception as exc:  # noqa: BLE001 - a damaged archive or header: one line
                    raise RunError(f"{name} cannot be read ({printable(' '.join(str(exc).split()), 150)}); "
                                   f"{damaged}", path=shown_path(path)) from None
                if len(data) != count * dtype.itemsize:
                    raise RunError(f"{name} is cut short; {damaged}", path=shown_path(path))
                array = np.frombuffer(data, dtype=dtype)
                values.append(array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape))
    return values


def check_weights_arrays(path: Path, model) -> None:
    """model.weights.h5 read through its HDF5 metadata only: no more arrays than the network's weights
    and an optimizer's slots for each (Keras saves a compiled model's optimizer too; Adam keeps two a
    weight, and a step counter), none larger than the network's largest weight, and no more bytes in
    all than those take, so a small file that declares a huge array is refused before Keras reads
    (or allocates) it."""
    import h5py

    damaged = "start over with --force"
    weights = list(model.weights)
    most = 4 * len(weights) + 16  # the weights, up to three slots each, the optimizer's scalars
    largest = max((int(np.prod(w.shape, dtype=np.int64)) for w in weights), default=0)
    total = (4 * sum(int(np.prod(w.shape, dtype=np.int64)) for w in weights) + 16) * 8  # 8: float64, the widest
    arrays: list[tuple[str, int, int]] = []
    try:
        with open_regular_file(path) as handle, h5py.File(handle, "r") as h5:
            def visit(name, item):
                if isinstance(item, h5py.Dataset):
                    arrays.append((name, int(np.prod(item.shape, dtype=np.int64)), item.dtype.itemsize))
                    if len(arrays) > most:
                        raise RunError(f"holds more than {most:,} arrays, where this network has {len(weights):,} "
                                       f"weights; it does not fit this network; {damaged}", path=shown_path(path))
            h5.visititems(visit)
    except RunError:
        raise
    except Exception as exc:  # noqa: BLE001 - not HDF5, or damaged: one line
        raise RunError(f"is not a readable weights file ({printable(' '.join(str(exc).split()), 150)}); {damaged}",
                       path=shown_path(path)) from None
    for name, count, itemsize in arrays:
        if count > largest:
            raise RunError(f"array {printable(name, 200)} declares {count:,} values where this network's largest "
                           f"weight has {largest:,}; it does not fit this network; {damaged}", path=shown_path(path))
    if sum(count * itemsize for _, count, itemsize in arrays) > total:
        raise RunError(f"declares more bytes than this network's weights and optimizer take; it does not fit this "
                       f"network; {damaged}", path=shown_path(path))


def _standard_dtype(dtype) -> str:
    return getattr(dtype, "name", None) or str(dtype)


def no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _whole(data: dict, key: str, low: int, high: int, path: Path, shown: str | None = None) -> int:
    value = data.get(key, ...)
    shown = shown or key
    if value is ...:
        raise RunError(f"{shown} is missing; the checkpoint is damaged; start over with --force", path=shown_path(path))
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RunError(f"{shown}={_show(value)}: expected a whole number from {low:,} to {high:,}; the checkpoint "
                       "is damaged; start over with --force", path=shown_path(path))
    return value


def _number(value: Any, shown: str, path: Path, *, low: float | None = None) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or \
            (low is not None and value < low):
        limit = f" of at least {low:g}" if low is not None else ""
        raise RunError(f"{shown}={_show(value)}: expected a finite number{limit}; the checkpoint is damaged; start "
                       "over with --force", path=shown_path(path))
    return float(value)


def _show(value: Any) -> str:
    if isinstance(value, str):  # repr escapes control characters
        return repr(value[:60]) + ("..." if len(value) > 60 else "")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 200:
        return "a huge integer"
    return format_value(value)


def parse_state(data: Any, path: Path, folder_step: int) -> State:
    """The checked contents of a checkpoint's state.json (``folder_step``: the step its folder names).
    Every value is refused, naming its key, unless it is one archgen itself could have written."""
    if not isinstance(data, dict):
        raise RunError(f"holds {_show(data)}; expected a mapping (epoch, step, seconds, best, log); the checkpoint "
                       "is damaged; start over with --force", path=shown_path(path))
    if folder_step > MAX_STEPS:
        raise RunError(f"names step {folder_step:,}; a run has at most {MAX_STEPS:,}", path=shown_path(path.parent))
    step = _whole(data, "step", folder_step, folder_step, path)  # the step the checkpoint's folder names
    epoch = _whole(data, "epoch", 1 if step else 0, step, path)
    if "seconds" not in data:
        raise RunError("seconds is missing; the checkpoint is damaged; start over with --force", path=shown_path(path))
    seconds = _number(data["seconds"], "seconds", path, low=0)
    best = data.get("best", ...)
    if not isinstance(best, dict):
        raise RunError(f"best={_show(best)}: expected a mapping (metric, value, epoch, step); the checkpoint is "
                       "damaged; start over with --force", path=shown_path(path))
    if best:
        metric = best.get("metric")
        if metric not in ("val_dice", "val_loss"):
            raise RunError(f"best.metric={_show(metric)}: expected val_dice or val_loss; the checkpoint is damaged; "
                           "start over with --force", path=shown_path(path))
        _number(best.get("value"), "best.value", path)
        _whole(best, "epoch", 1, epoch, path, "best.epoch")
        _whole(best, "step", 1, step, path, "best.step")
        extra = sorted(set(best) - {"metric", "value", "epoch", "step"}, key=str)
        if extra:
            raise RunError(f"best.{printable(str(extra[0]), 60)} is not a key archgen writes; the checkpoint is "
                           "damaged; start over with --force", path=shown_path(path))
    log = data.get("log", ...)
    if not isinstance(log, list) or len(log) != epoch:
        raise RunError(f"log={_show(log)}: expected a list of {epoch:,} rows (one per epoch); the checkpoint is "
                       "damaged; start over with --force", path=shown_path(path))
    for i, row in enumerate(log):
        if not isinstance(row, dict) or len(row) > MAX_LOG_COLUMNS:
            raise RunError(f"log[{i}]={_show(row)}: expected a mapping of column names to numbers; the checkpoint "
                           "is damaged; start over with --force", path=shown_path(path))
        for column, value in row.items():
            if not (column and column.isprintable() and len(column) <= 200):
                raise RunError(f"log[{i}] has column {_show(column)}; expected a printable name of at most 200 "
                               "characters; the checkpoint is damaged; start over with --force", path=shown_path(path))
            if value is not None:
                _number(value, f"log[{i}].{column}", path)
        for column in ("epoch", "step"):
            _whole(row, column, 1, step, path, f"log[{i}].{column}")
    extra = sorted(set(data) - {"epoch", "step", "seconds", "best", "log"}, key=str)
    if extra:
        raise RunError(f"{printable(str(extra[0]), 60)} is not a key archgen writes; the checkpoint is damaged; "
                       "start over with --force", path=shown_path(path))
    return State(epoch, step, seconds, dict(best), list(log))
