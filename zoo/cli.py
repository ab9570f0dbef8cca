"""The ``zoo`` command: one module per command in `zoo.commands`; this file builds the parser from them."""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._version import __version__
from .commands.output import json_only
from .errors import ZooError

# Modules of zoo.commands, in the order `zoo --help` lists their commands; each has
# `add_commands(subparsers)` and sets `func` on the parsers it adds. They import torch only
# when a command runs, so `zoo --help` and `zoo list` stay fast.
COMMAND_MODULES = ("catalog", "create", "download", "finetune", "evaluate", "report", "predict", "demo", "export",
                   "benchmark")


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the ``zoo`` command, with the subcommands of every module in `COMMAND_MODULES`."""
    parser = _Parser(prog="zoo", description="A model zoo for PyTorch: list, inspect and create models.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(f".commands.{name}", __package__).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``zoo`` command; returns its exit status (2 for an error zoo explains, on stderr)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with json_only(getattr(args, "json", False)):  # --json: standard output holds the JSON alone
            return int(args.func(args) or 0)
    except ZooError as exc:
        print(f"zoo: error: {exc}", file=sys.stderr)  # all of it: later lines may hold the cause or the fix
        return 2
    except KeyboardInterrupt:
        print("zoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `zoo list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
