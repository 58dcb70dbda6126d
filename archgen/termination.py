"""SIGTERM as an exception, and a record that it came.

The handler raises ``Terminated`` so that temporary files are removed on the way out. Python drops
an exception raised where it cannot propagate (in a ``__del__``, a weakref or garbage-collector
callback), and a signal can land there; the record lets the output code refuse to commit anyway.

Between creating a file and recording its name (so that it can be removed) a raise would leave the
file behind; ``held()`` keeps SIGTERM back over such a step and raises when it ends.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt."""


_requested = False
_holding = 0


def on_sigterm(*_) -> None:
    global _requested
    _requested = True
    if not _holding:
        raise Terminated()


def requested() -> bool:
    return _requested


def check() -> None:
    """Raise ``Terminated`` if SIGTERM came, even if its first raise was swallowed."""
    if _requested:
        raise Terminated()


@contextmanager
def held() -> Iterator[None]:
    """Run the block whole: SIGTERM arriving inside it is raised (as ``Terminated``) when it ends.
    Python runs signal handlers in the main thread only, so this holds whichever thread the
    operating system delivered the signal to; in another thread it holds nothing (the main thread's
    raise is not its to delay)."""
    global _holding
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _holding += 1
    try:
        yield
    finally:
        _holding -= 1
    if not _holding:
        check()
