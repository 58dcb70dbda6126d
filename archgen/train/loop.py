"""The training run: Keras's ``fit`` on the batch pipeline, with validation on whole images,
checkpoints, the log and the progress bar as callbacks.

An epoch is ``train.steps_per_epoch`` steps (fewer for the last when ``train.steps`` is not a
multiple); after each, the callbacks run in order: validation adds ``val_loss`` and
``val_dice`` to the epoch's logs, the checkpoint writes the epoch's files (and the best ones
when ``val_dice`` rose, or ``val_loss`` fell for regression), and the progress line reports.
"""

from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from archgen.backend import import_keras
from archgen.train.compile import compile_model, head_weights, make_loss
from archgen.train.dataset import Dataset
from archgen.train.run_dir import RunDir, RunError, State
from archgen.train.setup import Setup
from archgen.train.validate import Validation, validate

keras = import_keras()


@dataclass
class Outcome:
    """What a finished run reports."""

    state: State
    model: Any
    validation: Validation | None
    train_seconds: float  # this session's seconds in fit, less validation
    steps_this_session: int
    devices: int = 1


def best_metric(setup: Setup) -> tuple[str, str]:
    """The log entry that picks the best checkpoint, and whether higher is better."""
    if any(o.mode is not None for o in setup.outputs):
        return "val_dice", "max"
    return "val_loss", "min"


class Schedule:
    """Steps per epoch and epochs for ``train.total_steps``, from ``state``: a resumed run whose last
    epoch was cut short (an earlier, smaller ``--steps``) has its remaining steps in whole epochs
    after the ones done, the last one cut short again at the total."""

    def __init__(self, setup: Setup, state: State | None = None):
        self.total = setup.train.total_steps
        self.per_epoch = min(setup.train.steps_per_epoch, self.total)
        done_steps, done_epochs = (state.step, state.epoch) if state is not None else (0, 0)
        self.epochs = done_epochs + math.ceil(max(self.total - done_steps, 0) / self.per_epoch)


def build(setup: Setup):
    """The compiled network (inside the data-parallel layout when there is one)."""
    from archgen.emit import emit_model

    _quietly(keras.utils.set_random_seed, setup.train.seed)
    model = emit_model(setup.plan, setup.train.precision)
    compile_model(model, setup)
    return model


def run(setup: Setup, data: Dataset, run_dir: RunDir, state: State | None, progress, augment=None,
        devices: int = 1) -> Outcome:
    """Train from ``state`` (None: from scratch) to ``train.total_steps``; checkpoints in ``run_dir``."""
    from archgen.train.pipeline import TrainBatches

    schedule = Schedule(setup, state)
    model = build(setup)
    if state is not None:
        run_dir.restore(model)
    state = state or State()
    batches = TrainBatches(data.train, setup.window, setup.outputs, batch_size=setup.train.batch_size,
                           steps_per_epoch=schedule.per_epoch, seed=setup.train.seed,
                           oversampling=setup.data.foreground_oversampling, ndim=setup.ndim, augment=augment,
                           epoch=state.epoch, workers=setup.data.workers)
    losses = {o.name: make_loss(setup.losses[o.head], o) for o in setup.outputs if o.name == o.head}
    weights = head_weights(setup)
    recorder = Recorder(setup, data, run_dir, state, schedule, losses, weights)
    callbacks = [recorder, progress]
    start_steps = state.step
    if state.step < schedule.total:
        progress.start(schedule, state)
        try:
            model.fit(batches, epochs=schedule.epochs, initial_epoch=state.epoch, steps_per_epoch=schedule.per_epoch,
                      shuffle=False, verbose=0, callbacks=callbacks)  # batches in order: see pipeline.py
        finally:
            progress.stop()
    run_dir.load_best(model, state)
    validation = recorder.best_validation  # scored this session on exactly these weights
    if validation is None and data.validation:  # the best epoch was an earlier session's
        validation = validate(model, setup, data.validation, losses, weights)
    return Outcome(state, model, validation, recorder.fit_seconds - recorder.val_seconds, state.step - start_steps,
                   devices)


class Recorder(keras.callbacks.Callback):
    """Counts steps, stops at the total, validates, checkpoints and logs each epoch."""

    def __init__(self, setup: Setup, data: Dataset, run_dir: RunDir, state: State, schedule: Schedule,
                 losses: dict, weights: dict):
        super().__init__()
        self.setup, self.data, self.run_dir, self.state, self.schedule = setup, data, run_dir, state, schedule
        self.losses, self.weights = losses, weights
        self.metric, self.mode = best_metric(setup)
        self.fit_seconds = self.val_seconds = 0.0
        self.last_validation: Validation | None = None
        self.best_validation: Validation | None = None
        self._started = 0.0

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()
        self._session_base = self.state.seconds

    def on_train_batch_end(self, batch, logs=None):
        self.state.step += 1
        if self.state.step >= self.schedule.total:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        began = time.perf_counter()
        if self.data.validation:
            self.last_validation = validate(self.model, self.setup, self.data.validation, self.losses, self.weights)
            logs.update(self.last_validation.logs())
        self.val_seconds += time.perf_counter() - began
        self.fit_seconds = time.perf_counter() - self._started
        self.state.epoch = epoch + 1
        self.state.seconds = self._session_base + self.fit_seconds
        loss = logs.get("loss")
        if loss is not None and not _is_number(loss):  # diverged: its weights are no checkpoint to keep
            raise RunError(f"the training loss became {float(loss)} in epoch {self.state.epoch} (by step "
                           f"{self.state.step:,}): training diverged; lower train.optimizer.learning_rate or check "
                           "the loss settings (the run's earlier checkpoints are kept)", path="train")
        value = logs.get(self.metric)
        best = self.state.best.get("value")
        improved = _is_number(value) and (best is None or (value > best if self.mode == "max" else value < best))
        if improved:
            self.state.best = {"metric": self.metric, "value": float(value), "epoch": self.state.epoch,
                               "step": self.state.step}
            self.best_validation = self.last_validation
        logs["best"] = improved
        row = {"epoch": self.state.epoch, "step": self.state.step, "seconds": round(self.state.seconds, 2),
               "learning_rate": _learning_rate(self.model)}
        row.update({k: float(v) for k, v in logs.items() if k != "best" and _is_number(v)})
        self.state.log.append(row)
        self.run_dir.save_checkpoint(self.model, self.state, best=improved)


def _quietly(function, *args) -> Any:
    """``function(*args)`` with file descriptor 2 closed to C++ chatter: on JAX and PyTorch,
    ``set_random_seed`` imports TensorFlow where it is installed (to seed it too), and TensorFlow's
    start-up lines bypass Python's stderr. Python errors still surface as exceptions."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            return function(*args)
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _learning_rate(model) -> float | None:
    try:
        return float(np.asarray(keras.ops.convert_to_numpy(model.optimizer.learning_rate)))
    except Exception:  # noqa: BLE001 - only the log's column depends on it
        return None
