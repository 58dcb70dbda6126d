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
    if isinstance(value, int) and abs(value) >= 10**60:  # str() of a huge int is slow, long, or refused
        return ("a negative " + _huge_int(-value)[3:]) if value < 0 else _huge_int(value)
    try:
        text = str(value)
    except Exception:  # a caller's object whose __str__ fails: its type says enough
        return f"a {printable(type(value).__name__, 60)}"
    return printable(text, 60)


_EXACT_DIGITS_BITS = 1 << 20  # up to ~315,000 digits the count is exact (a few powers of ten)


def _huge_int(n: int) -> str:
    """"an integer of 5,000 digits" for a positive ``n``, counted from its bit length: ``str(n)`` is
    quadratic and, beyond 4,300 digits, refused by Python (``sys.get_int_max_str_digits``)."""
    bits = n.bit_length()
    digits = int((bits - 1) * 0.30102999566398120) + 1  # log10(2): exact or one short
    if bits > _EXACT_DIGITS_BITS:
        return f"an integer of about {digits:,} digits"
    while n >= 10**digits:
        digits += 1
    while digits > 1 and n < 10 ** (digits - 1):
        digits -= 1
    return f"an integer of {digits:,} digits"


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
