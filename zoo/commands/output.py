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

    Each column's width is measured once and the table is written in one piece, so listing a few thousand
    models costs a few milliseconds.
    """
    names = [str(h) for h in headers]
    columns = [["" if v is None else str(v) for v in column] for column in zip(*rows)] or [[] for _ in names]
    widths = [max(len(name), max(map(len, column), default=0)) for name, column in zip(names, columns)]
    if width is not None:
        keep = _kept_columns(names, widths, width, droppable)
        names, columns, widths = [names[i] for i in keep], [columns[i] for i in keep], [widths[i] for i in keep]
        _shorten(names, columns, widths, width, shortenable)
    line = "  ".join(f"{{:{'>' if name in right else '<'}{w}}}" for name, w in zip(names, widths)).format
    table = [[name.upper() for name in names], *zip(*columns)]
    print("\n".join([line(*row).rstrip() for row in table]))


_SHORTEST = 10  # a cut column keeps at least this many characters (or its header's)


def _kept_columns(names: list[str], widths: list[int], width: int, droppable: Sequence[str]) -> list[int]:
    """The columns left once those named in `droppable` are dropped, in order, until the table fits `width`."""
    keep = list(range(len(names)))
    for name in droppable:
        if _line_width([widths[i] for i in keep]) <= width:
            break
        if name in names and names.index(name) in keep:
            keep.remove(names.index(name))
    return keep


def _shorten(names: list[str], columns: list[list[str]], widths: list[int], width: int,
             shortenable: Sequence[str]) -> None:
    """Cut the cells of the columns named in `shortenable`, in order, until the table fits `width` (in place)."""
    excess = _line_width(widths) - width
    for name in shortenable:
        if excess <= 0:
            break
        if name in names:
            i = names.index(name)
            cut = min(excess, max(widths[i] - max(_SHORTEST, len(name)), 0))
            if cut:
                widths[i] -= cut
                columns[i] = [_cut(value, widths[i]) for value in columns[i]]
                excess -= cut


def _line_width(widths: Sequence[int]) -> int:
    return sum(widths) + 2 * (len(widths) - 1)


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
