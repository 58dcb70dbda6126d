"""The run folder of ``archgen train -o RUN_DIR``: what it holds, and how a run resumes.

::

    RUN_DIR/
      .archgen-train          marks a folder archgen train writes (only such a folder is resumed or replaced)
      .archgen-train.lock     locked while a process writes the run: a second one into the folder is refused
      config.yaml             the composed config of the run (after overrides)
      log.csv                 one row per epoch: step, seconds, learning rate, losses, metrics, validation
      checkpoints/step_N/     a checkpoint: weights.h5, optimizer.npz, state.json (the last, and the best)
      model.keras             at the end: the network at its best validation epoch, ready for archgen predict
      metrics.json            at the end: val_dice, val_loss, steps, seconds, params, ...
      validation.png          at the end: a validation image, its label and the prediction

A checkpoint is a folder written under a temporary name and renamed into place, so a run killed
at any moment (SIGKILL included) leaves every ``step_N`` whole; ``--resume`` continues from the
highest. Only the last checkpoint and the best one are kept. log.csv is rewritten after each
epoch from the checkpoint's state. The end's three files are written together
(``archgen.output.commit``). ``--force`` starts over in a run folder, replacing only the files
above: they are set aside in ``.archgen-replaced/`` and removed at the new run's first checkpoint,
or put back where it fails (or is interrupted) before one; a folder that holds anything else is
never written into.

Nothing in a run folder is followed or removed unless archgen wrote it: a link, a folder where a
file belongs (or a FIFO), or a ``step_N`` folder without archgen's ``.archgen`` marker is refused
before any work. A checkpoint's state.json is checked whole (types, finite numbers, ranges, its
step the one its folder names), and optimizer.npz's members are checked from their .npy headers
against the network's optimizer variables before any array is read.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from archgen.errors import ArchgenError, printable
from archgen.train.checkpoint_files import (
    STEP_MARKER,
    RunError,
    State,
    check_kind,
    check_readable_file,
    check_weights_arrays,
    is_checkpoint,
    no_constant,
    parse_state,
    read_optimizer,
    shown_path,
)

MARKER = ".archgen-train"
LOCK = ".archgen-train.lock"  # held (flock) by the process that writes the run
ASIDE = ".archgen-replaced"  # --force: the replaced run's files, until the new run's first checkpoint
OWN = ("config.yaml", "log.csv", "checkpoints", "model.keras", "metrics.json", "validation.png")
CHECKPOINTS = "checkpoints"
CHECKPOINT_FILES = ("model.weights.h5", "optimizer.npz", "state.json")
MAX_STATE_BYTES = 64 * 2**20  # state.json: a row per epoch


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    def is_run(self) -> bool:
        return (self.path / MARKER).is_file()

    def check(self, *, resume: bool, force: bool) -> None:
        """Refuse, before any work, a folder this run may not write (see the module's docstring)."""
        shown = str(self.path)
        if os.path.lexists(self.path) and not self.path.is_dir():
            raise RunError("is not a folder", path="--output", value=shown)
        if not self.path.exists():  # made with its missing parents; the nearest existing one must take them
            parent = self.path.parent
            while not os.path.lexists(parent) and parent != parent.parent:
                parent = parent.parent
            if not parent.is_dir():
                raise RunError(f"{printable(str(parent))!r} is not a folder", path="--output", value=shown)
            if not os.access(parent, os.W_OK | os.X_OK):
                raise RunError(f"folder {printable(str(parent))!r} is not writable", path="--output", value=shown)
            return
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise RunError("is not writable", path="--output", value=shown)
        entries = [e for e in os.listdir(self.path) if e != LOCK]
        if not entries:
            return
        if not self.is_run():
            raise RunError("holds files archgen train did not write; choose a new or empty folder", path="--output",
                           value=shown)
        foreign = sorted(e for e in entries if e not in (MARKER, *OWN) and not e.startswith("."))
        if foreign and force:
            raise RunError(f"holds {printable(foreign[0])}, which archgen train did not write; --force replaces only "
                           "a run's own files", path="--output", value=shown)
        self.check_own_files()
        if not resume and not force:
            done = self.read_state()
            where = f"at step {done.step:,}" if done is not None else "not yet checkpointed"
            raise RunError(f"holds a run ({where}); pass --resume to continue it, or --force to start over",
                           path="--output", value=shown)

    def check_own_files(self) -> None:
        """Refuse a run folder where one of archgen's own names holds something archgen does not write
        there: a link (it would be followed out of the folder), a folder where a file belongs, a FIFO or
        device, or a checkpoint folder without archgen's marker. Nothing is removed or read through it."""
        for name in OWN:
            path = self.path / name
            if name == CHECKPOINTS:
                check_kind(path, folder=True)
            else:
                check_kind(path, folder=False)
        try:
            with os.scandir(self.checkpoints) as entries:
                every = sorted(e.name for e in entries)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise RunError(f"cannot be listed: {exc.strerror}", path="--output",
                           value=str(self.checkpoints)) from None
        names = [name for name in every if name.startswith("step_")]
        # archgen.output's temporary names (.<stem>.<pid>-<host>.<random>.tmp...): a killed writer's leftovers
        stray = [name for name in every if not name.startswith("step_")
                 and not (name.startswith(".step_") and ".tmp" in name)]
        if stray:  # --force would remove checkpoints/ whole
            raise RunError(f"holds {printable(stray[0], 200)}, which archgen train did not write; move it out of the "
                           "run folder", path="--output", value=str(self.checkpoints))
        for name in names:
            folder = self.checkpoints / name
            if not (name[5:].isdigit() and name[5:].isascii()):
                raise RunError("is not a checkpoint archgen train wrote (step_ and a number); move it out of the "
                               "run folder", path="--output", value=str(folder))
            check_kind(folder, folder=True)
            check_kind(folder / STEP_MARKER, folder=False)
            if not os.path.lexists(folder / STEP_MARKER):
                raise RunError(f"has no {STEP_MARKER} marker: it is not a checkpoint archgen train wrote; move it "
                               "out of the run folder", path="--output", value=str(folder))
            for file in CHECKPOINT_FILES:
                check_kind(folder / file, folder=False)

    def claim(self, *, resume: bool, force: bool) -> None:
        """Hold the folder for this process (an advisory lock, released at exit) and check it again
        under the lock: two runs started into one folder would otherwise both pass ``check`` and mix
        their files. Makes the folder where there is none."""
        import fcntl

        self._made = not os.path.lexists(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise RunError(f"cannot be written: {exc.strerror}", path="--output", value=str(self.path)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise RunError("is being written by another archgen train; wait for it, or choose another folder",
                           path="--output", value=str(self.path)) from None
        self._lock = fd
        self.check(resume=resume, force=force)

    def release(self) -> None:
        """Drop the lock; a folder this run made and never started a run in goes again."""
        fd = getattr(self, "_lock", None)
        if fd is None:
            return
        if self._made and not self.is_run():
            with contextlib.suppress(OSError):
                (self.path / LOCK).unlink()
                self.path.rmdir()
        os.close(fd)  # closing the descriptor drops the lock
        self._lock = None

    def start(self, config_text: str, *, force: bool) -> None:
        """Make the folder (or, with ``force``, set a run's own files aside) and record the config."""
        from archgen.output import write_atomic

        if force and self.is_run():
            self._set_aside()
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            (self.path / MARKER).write_text("a run folder of archgen train\n")
        except OSError as exc:
            raise RunError(f"cannot be written: {exc.strerror}", path="--output", value=str(self.path)) from None
        write_atomic(self.path / "config.yaml", lambda tmp: tmp.write_text(config_text, encoding="utf-8"),
                     suffix=".yaml")

    # --force: the run it replaces stays until the new one has a checkpoint -------------------------

    def _set_aside(self) -> None:
        """The replaced run's own files into ASIDE. Where ASIDE is there already (a replacement
        killed before its first checkpoint), it holds the run that finished: the killed one's files go."""
        aside = self.path / ASIDE
        check_kind(aside, folder=True)
        older = os.path.lexists(aside)
        try:
            if not older:
                aside.mkdir()
            for name in OWN:
                target = self.path / name
                if older:
                    _remove(target)
                elif os.path.lexists(target):
                    os.rename(target, aside / name)
        except OSError as exc:
            raise RunError(f"cannot be written: {exc.strerror}", path="--output", value=str(self.path)) from None

    def settle(self) -> None:
        """The new run has a checkpoint: the run it replaced goes."""
        aside = self.path / ASIDE
        if aside.is_dir() and not aside.is_symlink():
            shutil.rmtree(aside, ignore_errors=True)

    def put_back(self) -> None:
        """The new run failed before its first checkpoint: the run it replaced comes back whole."""
        aside = self.path / ASIDE
        if not aside.is_dir() or aside.is_symlink():
            return
        for name in OWN:
            if os.path.lexists(aside / name):
                _remove(self.path / name)
                os.rename(aside / name, self.path / name)
        shutil.rmtree(aside, ignore_errors=True)

    def recorded_config(self) -> str | None:
        from archgen.config.read import read_bounded_file

        path = self.path / "config.yaml"
        if not path.is_file():
            return None
        return read_bounded_file(path, key="--output", expected="a .yaml file").decode("utf-8", "replace")

    # --- checkpoints --------------------------------------------------------------------------

    def _steps(self) -> list[int]:
        """Steps of the checkpoint folders in place, lowest first."""
        found = []
        try:
            for entry in os.scandir(self.checkpoints):
                name = entry.name
                if name.startswith("step_") and name[5:].isdigit() and entry.is_dir(follow_symlinks=False):
                    found.append(int(name[5:]))
        except OSError:
            return []
        return sorted(found)

    def _folder(self, step: int) -> Path:
        return self.checkpoints / f"step_{step:09d}"

    def read_state(self) -> State | None:
        """The last checkpoint's state, or None where there is none."""
        from archgen.config.read import read_bounded_file

        steps = self._steps()
        if not steps:
            return None
        path = self._folder(steps[-1]) / "state.json"
        check_kind(path, folder=False)
        raw = read_bounded_file(path, key="--resume", max_bytes=MAX_STATE_BYTES, expected="a state.json file",
                                noun="a run's state")
        try:
            data = json.loads(raw, parse_constant=no_constant)
        except (ValueError, RecursionError):
            raise RunError("is not valid JSON: the checkpoint is damaged; start over with --force",
                           path=shown_path(path)) from None
        return parse_state(data, path, steps[-1])

    def save_checkpoint(self, model, state: State, *, best: bool) -> None:
        """The epoch's checkpoint folder, then the log; older checkpoints but the best are removed."""
        from archgen.output import write_atomic, write_atomic_dir

        arrays = [np.asarray(v) for v in _optimizer_values(model)]

        def write(folder: Path) -> None:
            folder.mkdir(exist_ok=True)
            model.save_weights(str(folder / "model.weights.h5"))
            _save_npz(folder / "optimizer.npz", arrays)
            (folder / "state.json").write_text(json.dumps(state.__dict__, indent=1))

        check_kind(self.checkpoints, folder=True)
        target = self._folder(state.step)
        if os.path.lexists(target) and not is_checkpoint(target):
            raise RunError("is not a checkpoint archgen train wrote; it is left as it is", path="--output",
                           value=str(target))
        check_kind(self.path / "log.csv", folder=False)
        write_atomic_dir(target, write, force=True)
        self.settle()
        write_atomic(self.path / "log.csv", lambda tmp: tmp.write_text(log_csv(state.log)), suffix=".csv")
        keep = {state.step, state.best.get("step")}
        for step in self._steps():
            folder = self._folder(step)
            if step not in keep and is_checkpoint(folder):  # only a real folder with archgen's marker
                shutil.rmtree(folder, ignore_errors=True)

    def restore(self, model) -> None:
        """The last checkpoint's weights and optimizer state into ``model`` (compiled, same network)."""
        folder = self._folder(self._steps()[-1])
        optimizer = model.optimizer
        optimizer.build(model.trainable_variables)  # its variables exist before anything is loaded into them
        variables = list(optimizer.variables)
        values = read_optimizer(folder / "optimizer.npz", variables)  # headers checked before any array
        _load_weights(model, folder / "model.weights.h5", "last", self.path)
        for variable, value in zip(variables, values):
            variable.assign(value)

    def load_best(self, model, state: State) -> None:
        """The weights of the best checkpoint (the last where none was best) into ``model``."""
        best = self._folder(state.best.get("step") or -1) / "model.weights.h5"
        which = "best"
        if not best.is_file():
            best, which = self._folder(self._steps()[-1]) / "model.weights.h5", "last"
        _load_weights(model, best, which, self.path)

    # --- the end ------------------------------------------------------------------------------

    def finish(self, export_model, metrics: dict[str, Any], picture: bytes | None) -> dict[str, str]:
        """model.keras, metrics.json and validation.png, all in place or none; {kind: path}."""
        from archgen.output import Output, write_together

        for name in ("model.keras", "metrics.json", "validation.png"):
            check_kind(self.path / name, folder=False)  # replaced below: only a file archgen wrote
        outputs = [Output(self.path / "model.keras", lambda tmp: export_model.save(str(tmp)), ".keras"),
                   Output(self.path / "metrics.json", lambda tmp: tmp.write_text(json.dumps(metrics, indent=2) + "\n"),
                          ".json")]
        if picture is not None:
            outputs.append(Output(self.path / "validation.png", lambda tmp: tmp.write_bytes(picture), ".png"))
        write_together(outputs, force=True)
        files = {"keras": str(self.path / "model.keras"), "metrics": str(self.path / "metrics.json"),
                 "log": str(self.path / "log.csv"), "config": str(self.path / "config.yaml")}
        if picture is not None:
            files["png"] = str(self.path / "validation.png")
        return files


def _remove(path: Path) -> None:
    """A file or a real folder (never a link's target)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _load_weights(model, path: Path, which: str, run: Path) -> None:
    """A checkpoint's weights into ``model``: the file's arrays checked from its metadata first, and
    a file Keras cannot load (damaged, or another network's) one line, without Keras's warnings."""
    from archgen.model_file import weights_loading

    check_readable_file(path)  # a FIFO would block h5py's open for ever
    check_weights_arrays(path, model)
    try:
        with weights_loading("--resume", str(run)):  # Keras's warning per layer it could not fill: one line
            model.load_weights(str(path))
    except ArchgenError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or foreign checkpoint: one line
        raise RunError(f"its {which} checkpoint cannot be read: {printable(' '.join(str(exc).split()), 200)}; "
                       "start over with --force", path="--resume", value=str(run)) from None


def _optimizer_values(model) -> list:
    from archgen.backend import import_keras

    ops = import_keras().ops
    return [ops.convert_to_numpy(v.value) for v in model.optimizer.variables]


def _save_npz(tmp: Path, arrays: list[np.ndarray]) -> None:
    with open(tmp, "wb") as handle:  # a file object: NumPy adds no suffix of its own
        np.savez(handle, **{f"v{i}": a for i, a in enumerate(arrays)})


def log_csv(rows: list[dict[str, Any]]) -> str:
    """The log's rows as CSV: every column any row has, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(row.get(k)) for k in columns})
    return out.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else value
