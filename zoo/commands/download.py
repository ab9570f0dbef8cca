"""``zoo download NAME[.TAG]``: fetch and verify weights now, so later runs work offline."""
from __future__ import annotations

import argparse

from ..errors import ZooError
from ..registry import Resolved, default_registry
from ..weights import fetch
from .options import Subcommands
from .output import print_json


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("download", help="download and verify a model's weights for offline use")
    p.add_argument("names", nargs="+", metavar="NAME[.TAG]",
                   help="model, alias or recipe; .TAG picks one set of weights")
    p.add_argument("--all-tags", action="store_true", help="every set of weights of the model, not only the default")
    p.add_argument("--force", action="store_true", help="download again even if a cached copy exists")
    p.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the stored login)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    registry = default_registry()
    rows: list[dict[str, str]] = []
    for name in args.names:
        resolved = registry.resolve(name)
        card = resolved.card
        for tag in _tags(resolved, all_tags=args.all_tags):
            path = fetch(card, tag, token=args.token, force=args.force, progress=not args.quiet and not args.json)
            rows.append({"name": f"{card.name}.{tag}", "path": str(path)})
            if not args.json:
                print(f"{card.name}.{tag}: {path}")
    if args.json:
        print_json(rows)
    return 0


def _tags(resolved: Resolved, *, all_tags: bool) -> list[str]:
    """The weights to fetch: every tag, or the one the name picks, else the model's default."""
    card = resolved.card
    if all_tags:
        tags = sorted(card.weights)
    else:
        tag = resolved.tag or card.default_weights
        tags = [tag] if tag else []
    if not tags:
        raise ZooError(f"model {card.name!r} has no pretrained weights to download; "
                       "`zoo list --pretrained` shows the models that have them")
    return tags
