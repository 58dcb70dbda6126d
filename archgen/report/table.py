"""Tables that fit the terminal: columns that fold to a width, layouts tried richest first, and
lines wrapped between parts, never inside a number."""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text


@dataclass
class Col:
    """One column of a fitted table: ``cells`` has one entry per row (None for an empty cell).

    ``fold`` is the narrowest width the column may be folded to (names and headers wrap, numbers
    never do); None keeps the column at its natural width.
    """

    key: str
    header: str
    cells: list[Text | str | None]
    justify: str = "left"
    style: str | None = None
    fold: int | None = None


def _text(cell: Text | str | None) -> Text:
    if cell is None:
        return Text("")
    return cell.copy() if isinstance(cell, Text) else Text(cell)


def _natural(col: Col) -> int:
    return max([cell_len(line) for line in col.header.split("\n")]
               + [cell_len(line) for c in col.cells for line in _text(c).plain.split("\n")] + [1])


def _fold_header(header: str, width: int) -> str:
    """Break a dotted key at its dots (``encoder.`` / ``filters``) to fit ``width``."""
    if cell_len(header) <= width:
        return header
    lines: list[str] = []
    for part in header.replace(".", ".\0").split("\0"):
        if lines and cell_len(lines[-1] + part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(lines)


def _table(title: Text | str | None, cols: list[Col], sections: set[int], widths: dict[str, int]) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for col in cols:
        width = widths.get(col.key)
        header = Text(_fold_header(col.header, width) if width else col.header, overflow="fold")
        table.add_column(header, justify=col.justify, style=col.style, no_wrap=width is None,
                         overflow="fold", width=width)
    rows = len(cols[0].cells) if cols else 0
    for i in range(rows):
        cells = [_text(col.cells[i]) for col in cols]
        table.add_row(*cells, end_section=i in sections)
    return table


def table_width(table: Table, console: Console) -> int:
    return Measurement.get(console, console.options.update(width=10**5), table).maximum


def fit_table(title: Text | str | None, layouts: list[list[Col]], width: int | None,
              sections: set[int] = frozenset()) -> tuple[Table, int]:
    """The first of ``layouts`` (richest first) that fits ``width`` at its natural widths or with
    its foldable columns folded; else the last at its natural width. Returns the table and its
    width; a number is never cut (its column never shrinks below its widest cell)."""
    console = Console(width=10**5)
    table = None
    for cols in layouts:
        table = _table(title, cols, sections, {})
        natural = table_width(table, console)
        if width is None or natural <= width:
            return table, natural
        excess = natural - width
        widths = {c.key: _natural(c) for c in cols if c.fold is not None}
        room = sum(max(0, w - cols_fold(cols, k)) for k, w in widths.items())
        if room < excess:
            continue
        while excess > 0:  # narrow the widest foldable column first
            key = max(widths, key=lambda k: widths[k] - cols_fold(cols, k))
            if widths[key] <= cols_fold(cols, key):
                break
            widths[key] -= 1
            excess -= 1
        table = _table(title, cols, sections, widths)
        return table, table_width(table, console)
    assert table is not None
    return table, table_width(table, console)


def cols_fold(cols: list[Col], key: str) -> int:
    return next(max(1, c.fold or 1) for c in cols if c.key == key)


def print_fitted(console: Console, table: Table, width: int) -> None:
    """Print ``table``; one wider than the terminal is printed whole (the terminal wraps it), not cut."""
    if width <= console.width:
        console.print(table)
        return
    saved = console.width
    console.width = width
    try:
        console.print(table, crop=False)
    finally:
        console.width = saved


def wrap_parts(parts: list[str], width: int, sep: str = "; ", indent: str = "  ") -> list[str]:
    """Join ``parts`` with ``sep`` into lines of at most ``width``, breaking between parts first and
    inside a part only at spaces (a number is never split); continuation lines are indented."""
    import textwrap

    lines: list[str] = []
    for part in parts:
        if lines and cell_len(lines[-1] + sep + part) <= width:
            lines[-1] += sep + part
        elif lines:
            lines[-1] += sep.rstrip()
            lines.append(indent + part)
        else:
            lines.append(part)
    out: list[str] = []
    for line in lines:
        first = len(line) - len(line.lstrip(" "))
        glued = _UNIT.sub("\\1\0\\2", line)  # "23.95 GiB" stays on one line
        out += [part.replace("\0", " ") for part in textwrap.wrap(
            glued, width, initial_indent="", subsequent_indent=" " * first + indent, break_long_words=False,
            break_on_hyphens=False, drop_whitespace=True)] or [""]
    return out


_UNIT = re.compile(r"(\d) ((?:[KMGT]i)?B\b)")
