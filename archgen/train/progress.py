"""What ``archgen train`` shows while it trains, on stderr: a rich progress bar with the loss,
the first metric and the ETA where stderr is a terminal, else one line per epoch; nothing with
``-q``. Values are printed as text (no markup, no emoji codes)."""

from __future__ import annotations

from typing import Any

from archgen.backend import import_keras

keras = import_keras()


def _short(logs: dict[str, Any], keys: list[str]) -> str:
    parts = []
    for key in keys:
        if key in logs:
            try:
                parts.append(f"{key} {float(logs[key]):.4f}")
            except (TypeError, ValueError):
                continue
    return "  ".join(parts)


class Progress(keras.callbacks.Callback):
    """The bar or the lines (see the module's docstring)."""

    def __init__(self, quiet: bool = False):
        super().__init__()
        from rich.console import Console

        self.console = Console(stderr=True, highlight=False, markup=False, emoji=False)
        self.quiet = quiet
        self.bar = None
        self.step = 0
        self.total = 0
        self.epochs = 0

    def start(self, schedule, state) -> None:
        self.total, self.step, self.epochs = schedule.total, state.step, schedule.epochs
        if self.quiet or not self.console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        self.bar = Bar(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[figures]}"),
                       TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=self.console,
                       transient=False)
        self.task = self.bar.add_task("train", total=self.total, completed=self.step, figures="")
        self.bar.start()

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _metric_keys(self, logs: dict[str, Any]) -> list[str]:
        first = next((k for k in logs if k.endswith(("dice", "iou", "mae")) and not k.startswith("val_")), None)
        return ["loss"] + ([first] if first else [])

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.bar is not None:
            self.bar.update(self.task, completed=self.step, figures=_short(logs or {}, self._metric_keys(logs or {})))

    def on_epoch_end(self, epoch, logs=None):
        if self.quiet:
            return
        logs = logs or {}
        keys = self._metric_keys(logs) + [k for k in ("val_loss", "val_dice", "val_mae") if k in logs]
        text = f"epoch {epoch + 1}/{self.epochs}  step {self.step:,}/{self.total:,}  {_short(logs, keys)}"
        if logs.get("best"):
            text += "  (best)"
        if self.bar is not None:
            self.bar.console.print(text)
        else:
            self.console.print(text, soft_wrap=True)
