"""The ``zoo`` command. Each group of subcommands lives in `zoo.commands`; this file wires them."""
from __future__ import annotations

import argparse
import importlib
import math
import sys
from typing import Any, Callable, Sequence

from .errors import ZooError

# Modules in zoo.commands; each has `add_commands(subparsers)` and sets `func` on its parsers.
COMMAND_MODULES = ("catalog", "build", "weights", "train")


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as one line (the usage is one ``--help`` away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """An argument type: a whole number of at least 1."""
    return _checked(text, int, lambda value: value >= 1, "a whole number of at least 1")


def non_negative_int(text: str) -> int:
    """An argument type: a whole number of at least 0."""
    return _checked(text, int, lambda value: value >= 0, "a whole number of at least 0")


def positive_float(text: str) -> float:
    """An argument type: a finite number above 0."""
    return _checked(text, float, lambda value: math.isfinite(value) and value > 0, "a positive finite number")


def _checked(text: str, kind: Callable[[str], Any], ok: Callable[[Any], bool], what: str) -> Any:
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or not ok(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="zoo", description="A model zoo for PyTorch: list, inspect and create models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f".commands.{name}", __package__).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ZooError as exc:
        print(f"zoo: error: {exc}".splitlines()[0], file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `zoo list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
