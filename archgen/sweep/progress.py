"""The live progress bar of a running sweep."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from archgen.sweep.job import RESULT, set_row_listener
from archgen.sweep.options import SweepOptions


class SweepProgress:
    """A live bar on stderr (done/total, failures so far, ETA) while the sweep runs; shown only
    when stderr is a terminal and not ``-q``. Jobs in this process report through
    ``set_row_listener``; jobs elsewhere (joblib, submitit, ray) are seen by the ``result.json``
    files they write."""

    def __init__(self, sweep_dir: Path, total: int | None, options: SweepOptions):
        from rich.console import Console

        self.sweep_dir, self.total = sweep_dir, total
        self.console = Console(stderr=True, highlight=False, markup=False, emoji=False)
        self.shown = not options.quiet and self.console.is_terminal
        self.seen: set[int] = set()
        self.failed = 0
        self.started = time.time()

    def __enter__(self) -> SweepProgress:
        if not self.shown:
            return self
        import threading

        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[failed]} failed"), TimeElapsedColumn(), TextColumn("eta"),
                            TimeRemainingColumn(), console=self.console, transient=False)
        self.task = self.bar.add_task("sweep", total=self.total, failed=0)
        self.bar.start()
        set_row_listener(self.row)
        self.poller = threading.Thread(target=self._poll, daemon=True)
        self.poller.start()
        return self

    def row(self, row: dict[str, Any]) -> None:
        with self.lock:
            if row.get("job") in self.seen:
                return
            self.seen.add(row.get("job"))
            self.failed += row.get("status") != "ok"
            self.bar.update(self.task, completed=len(self.seen), failed=self.failed)

    def _poll(self) -> None:
        while not self.stop.wait(0.5):
            self._scan()

    def _scan(self) -> None:
        """Rows that jobs in other processes wrote since the sweep started."""
        try:
            jobs = [p for p in self.sweep_dir.iterdir() if p.name.isdigit() and int(p.name) not in self.seen
                    and (self.total is None or int(p.name) < self.total)]
        except OSError:
            return
        for job in jobs:
            try:
                result = job / RESULT
                if result.stat().st_mtime >= self.started - 1:  # not a row of an earlier sweep (--force)
                    self.row(json.loads(result.read_text()))
            except (OSError, ValueError, AttributeError):
                pass  # not finished, or being written

    def __exit__(self, *exc: Any) -> None:
        if not self.shown:
            return
        set_row_listener(None)
        self.stop.set()
        self.poller.join()
        if exc[0] is None:
            self._scan()
        self.bar.stop()
