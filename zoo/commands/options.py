"""Argument types and choices shared by the commands.

A bad number is an argparse error (one line, exit 2) before anything runs. Choices that name
what another module defines (trainer optimizers, fine-tune strategies) are read from that module
when they are first needed, so building the parser for ``zoo --help`` or ``zoo list`` imports
no torch.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import TypeAlias, TypedDict, TypeVar

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

Number = TypeVar("Number", int, float)


def positive_int(text: str) -> int:
    """An argument type: a whole number of at least 1."""
    return _checked(text, int, lambda value: value >= 1, "a whole number of at least 1")


def non_negative_int(text: str) -> int:
    """An argument type: a whole number of at least 0."""
    return _checked(text, int, lambda value: value >= 0, "a whole number of at least 0")


def positive_float(text: str) -> float:
    """An argument type: a finite number above 0."""
    return _checked(text, float, lambda value: math.isfinite(value) and value > 0, "a positive finite number")


def _checked(text: str, kind: Callable[[str], Number], ok: Callable[[Number], bool], what: str) -> Number:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


class DeferredChoices(Collection[str]):
    """The ``choices`` of an argument, read from the module that defines them on first use.

    argparse reads choices only to check a given value or to format the command's own help
    (an argument that has choices needs a `metavar`, or argparse lists them while building).
    """

    def __init__(self, load: Callable[[], Iterable[str]]) -> None:
        self._load = load
        self._names: tuple[str, ...] | None = None

    def _loaded(self) -> tuple[str, ...]:
        if self._names is None:
            self._names = tuple(self._load())
        return self._names

    def __len__(self) -> int:
        return len(self._loaded())

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __contains__(self, value: object) -> bool:
        return value in self._loaded()


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read labelled data: bad files, and the columns of a CSV/JSONL table."""
    parser.add_argument("--skip-bad", action="store_true", help="leave out unreadable files (with a warning)")
    parser.add_argument("--text-column", default="text", help="the text column of a CSV/JSONL (default: %(default)s)")
    parser.add_argument("--label-column", default="label",
                        help="the label column of a CSV/JSONL (default: %(default)s)")


class TableColumns(TypedDict):
    """Keywords of `zoo.data.class_names` and `zoo.data.dataset_for`."""

    text_column: str
    label_column: str


def table_columns(args: argparse.Namespace) -> TableColumns:
    """The column names `add_table_arguments` read."""
    return {"text_column": args.text_column, "label_column": args.label_column}
