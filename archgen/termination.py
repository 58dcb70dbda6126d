"""SIGTERM as an exception, and a record that it came.

The handler raises ``Terminated`` so that temporary files are removed on the way out. Python drops
an exception raised where it cannot propagate (in a ``__del__``, a weakref or garbage-collector
callback), and a signal can land there; the record lets the output code refuse to commit anyway.
"""

from __future__ import annotations


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt."""


_requested = False


def on_sigterm(*_) -> None:
    global _requested
    _requested = True
    raise Terminated()


def requested() -> bool:
    return _requested


def check() -> None:
    """Raise ``Terminated`` if SIGTERM came, even if its first raise was swallowed."""
    if _requested:
        raise Terminated()
