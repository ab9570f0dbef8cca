"""``zoo demo``: the demo dataset and starting weights behind the README's first commands, made offline."""
from __future__ import annotations

import argparse
from pathlib import Path

from .options import Subcommands


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("demo", help="make the demo dataset and starting weights (offline, under a minute)")
    p.add_argument("--out", default="zoo-demo", help="folder to create (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="make everything again even if it exists")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import make_demo  # numpy and Pillow: only once the command runs

    paths = make_demo(Path(args.out).expanduser(), force=args.force)
    print(f"demo data:        {paths.train} and {paths.val}")
    print(f"starting weights: {paths.weights}")
    print("now fine-tune:")
    print(f"  {paths.finetune_command()}")
    return 0
