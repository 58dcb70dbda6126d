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
        head = self.path if len(self.path) <= 120 else self.path[:117] + "..."
        if head and self.value is not ...:
            head = f"{head}={format_value(self.value)}"
        text = f"{head}: {self.message}" if head else self.message
        if self.hint:
            text += "\n" + "\n".join("       " + line for line in self.hint.splitlines())
        return text


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
        return value if value and value.isprintable() and len(value) <= 60 else repr(value[:60])
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


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
