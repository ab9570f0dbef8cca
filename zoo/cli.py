"""The ``zoo`` command. Each group of subcommands lives in `zoo.commands`; this file wires them."""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from .errors import ZooError

# Modules in zoo.commands; each has `add_commands(subparsers)` and sets `func` on its parsers.
COMMAND_MODULES = ("catalog", "build", "weights", "train")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zoo", description="A model zoo for PyTorch: list, inspect and create models.")
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
