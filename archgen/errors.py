"""One exception type per stage, all carrying the dotted config path they are about."""

from __future__ import annotations

import difflib
from typing import Any, Iterable


class ArchgenError(Exception):
    """A user-facing error: printed as ``error: <path>=<value>: <message>``, exit code 2."""

    def __init__(self, message: str, path: str = "", value: Any = ..., hint: str = ""):
        self.path = path
        self.value = value
        self.message = message
        self.hint = hint
        super().__init__(self.render())

    def render(self) -> str:
        head = printable(self.path, 120)
        if head and self.value is not ...:
            head = f"{head}={format_value(self.value)}"
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += "\n" + "\n".join("       " + line for line in self.hint.splitlines())
        return "\n".join(printable(line, 2000) for line in text.split("\n"))


class SpecError(ArchgenError):
    """The config file or an override is malformed or has a wrong value."""


class PlanError(ArchgenError):
    """The config is well-formed but describes a network that cannot be built."""


class EmitError(ArchgenError):
    """The back end refused a planned layer."""


class OutputError(ArchgenError):
    """An output file cannot be written."""


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value if value and value.isprintable() and len(value) <= 60 else repr(value[:60]) + (
            "..." if len(value) > 60 else "")
    if isinstance(value, (list, tuple)):
        shown = ", ".join(format_value(v) for v in value[:8])
        return "[" + shown + (f", ... ({len(value):,} entries)" if len(value) > 8 else "") + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        items = list(value.items())
        shown = ", ".join(f"{format_value(k)}: {format_value(v)}" for k, v in items[:8])
        return "{" + shown + (f", ... ({len(items):,} keys)" if len(items) > 8 else "") + "}"
    if isinstance(value, int) and abs(value) >= 10**60:  # str() of a huge int is slow and long
        return f"an integer of {len(str(abs(value)))} digits" if value.bit_length() < 20000 else "a huge integer"
    text = printable(str(value), 60)
    return text


def printable(text: str, limit: int = 300) -> str:
    """``text`` with control characters escaped (a config or override cannot drive the terminal)
    and cut at ``limit`` characters."""
    text = str(text)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or nothing."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def dotted(loc: Iterable[Any]) -> str:
    """``("heads", 0, "filters")`` -> ``heads[0].filters``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
