"""Argument types and options shared by the commands.

A bad number is an argparse error (one line, exit 2) before anything runs.
"""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable
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


def non_negative_float(text: str) -> float:
    """An argument type: a finite number of at least 0."""
    return _checked(text, float, lambda value: math.isfinite(value) and value >= 0, "a finite number of at least 0")


def fraction(text: str) -> float:
    """An argument type: a number from 0 up to, not including, 1."""
    return _checked(text, float, lambda value: 0 <= value < 1, "a number from 0 up to 1 (not 1)")


def _checked(text: str, kind: Callable[[str], Number], ok: Callable[[Number], bool], what: str) -> Number:
    error = argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    try:
        value = kind(text)
    except ValueError:
        raise error from None
    if not ok(value):
        raise error
    return value


def add_table_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that say how to read labelled data: bad files, and the columns of a CSV/JSONL table."""
    parser.add_argument("--skip-bad", action="store_true", help="leave out unreadable files (with a warning)")
    add_text_column_argument(parser)
    parser.add_argument("--label-column", default="label",
                        help="the label column of a CSV/JSONL (default: %(default)s)")


def add_text_column_argument(parser: argparse.ArgumentParser) -> None:
    """``--text-column``: where the texts of a CSV/JSONL file are."""
    parser.add_argument("--text-column", default="text", help="the text column of a CSV/JSONL (default: %(default)s)")


class TableColumns(TypedDict):
    """Keywords of `zoo.data.class_names` and `zoo.data.dataset_for`."""

    text_column: str
    label_column: str


def table_columns(args: argparse.Namespace) -> TableColumns:
    """The column names `add_table_arguments` read."""
    return {"text_column": args.text_column, "label_column": args.label_column}
