"""Printing for people (aligned tables, folded values) and for scripts (JSON).

With ``--json`` a command's standard output holds the JSON document alone: `json_only` sends
everything else printed meanwhile (progress lines, the trainer's epoch lines) to standard error,
and `print_json` writes to the standard output the command started with.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import shutil
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

_JSON_STREAM: contextvars.ContextVar[TextIO | None] = contextvars.ContextVar("zoo_json_stream", default=None)


@contextlib.contextmanager
def json_only(enabled: bool = True) -> Iterator[None]:
    """In the block, `print_json` writes to standard output and everything else printed goes to standard error."""
    if not enabled:
        yield
        return
    token = _JSON_STREAM.set(sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _JSON_STREAM.reset(token)


def print_json(data: Any) -> None:
    stream = _JSON_STREAM.get() or sys.stdout
    json.dump(data, stream, indent=2, sort_keys=False, default=str)
    stream.write("\n")
    stream.flush()


def terminal_width() -> int:
    """The width to fit: the terminal's, ``$COLUMNS`` when set, else 80 (output into a pipe or a file)."""
    return shutil.get_terminal_size((80, 24)).columns


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, width: int | None = None,
                droppable: Sequence[str] = (), shortenable: Sequence[str] = (), right: Sequence[str] = ()) -> None:
    """Rows under upper-case headers, in aligned columns (those named in `right` aligned right: numbers).

    With `width`, a table wider than that loses the columns named in `droppable`, in that order,
    and then the cells of the columns in `shortenable` are cut (ending in "..."), in that order,
    until its lines fit; the other columns are never cut.
    """
    names = [str(h) for h in headers]
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    if width is not None:
        names, cells = _fitted(names, cells, width, droppable, shortenable)
    table = [[name.upper() for name in names], *cells]
    widths = _widths(table)
    flush = [name in right for name in names]
    for row in table:
        print("  ".join(v.rjust(w) if r else v.ljust(w) for v, w, r in zip(row, widths, flush)).rstrip())


_SHORTEST = 10  # a cut column keeps at least this many characters (or its header's)


def _fitted(names: list[str], cells: list[list[str]], width: int, droppable: Sequence[str],
            shortenable: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    """The columns and cells of a table cut down to `width` (see `print_table`)."""
    keep = list(range(len(names)))
    for name in droppable:
        if _line_width(names, cells, keep) <= width:
            break
        keep.remove(names.index(name))
    names, cells = [names[i] for i in keep], [[row[i] for i in keep] for row in cells]
    limits = _widths([names, *cells])
    excess = sum(limits) + 2 * (len(limits) - 1) - width
    for name in shortenable:
        if excess <= 0:
            break
        if name in names:
            i = names.index(name)
            cut = min(excess, max(limits[i] - max(_SHORTEST, len(name)), 0))
            limits[i] -= cut
            excess -= cut
    return names, [[_cut(value, limit) for value, limit in zip(row, limits)] for row in cells]


def _line_width(names: list[str], cells: list[list[str]], keep: list[int]) -> int:
    widths = _widths([[row[i] for i in keep] for row in [names, *cells]])
    return sum(widths) + 2 * (len(widths) - 1)


def _widths(table: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(row[i]) for row in table) for i in range(len(table[0]))]


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[:limit - 3] + "..."


def folded(text: str, *, indent: int, width: int) -> str:
    """`text` broken at spaces into lines of at most `width` columns, every line after the first indented by
    `indent` (the first goes after a label of that width). A word too long for any line (a URL, a path) stays
    whole on the line it starts, so it never ends up alone below its label."""
    room = max(width - indent, 20)
    lines = [""]
    for word in text.split(" "):
        if lines[-1] and len(lines[-1]) + 1 + len(word) > room and len(word) <= room:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}" if lines[-1] else word
    return ("\n" + " " * indent).join(lines)
