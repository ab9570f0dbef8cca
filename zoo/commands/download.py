"""``zoo download NAME[.TAG]`` or ``hf-hub:org/repo``: fetch and verify now, so later runs work offline."""
from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

from ..errors import WeightsError, ZooError
from ..names import HUB_PREFIX, LOCAL_PREFIX
from ..registry import Resolved, default_registry
from .options import Subcommands
from .output import print_json


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("download", help="download and verify a model's weights for offline use")
    p.add_argument("names", nargs="+", metavar="NAME[.TAG]",
                   help="model, alias or recipe (.TAG picks one set of weights), or hf-hub:org/repo[@revision] "
                        "for a saved model or transformers checkpoint on the Hub")
    p.add_argument("--all-tags", action="store_true", help="every set of weights of the model, not only the default")
    p.add_argument("--force", action="store_true", help="download again even if a cached copy exists")
    p.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the stored login)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    from ..weights.sources import NotCachedError  # http and ssl: only when downloading, not for every zoo command

    rows: list[dict[str, str]] = []
    try:
        for name in args.names:
            for label, path in _downloads(name, args):
                rows.append({"name": label, "path": str(path)})
                if not args.json:
                    print(f"{label}: {path}")
    except NotCachedError as exc:  # its advice is to run this very command
        raise WeightsError(exc.while_downloading()) from None
    if args.json:
        print_json(rows)
    return 0


def _downloads(name: str, args: argparse.Namespace) -> Iterator[tuple[str, Path]]:
    """What `name` stands for, downloaded and verified: ``(label, local path)`` per set of weights or repo."""
    if name.startswith(HUB_PREFIX):
        from ..weights.saved_folder import saved_directory  # its module imports torch: only for Hub repos

        yield name, saved_directory(name, token=args.token, force=args.force)
        return
    if name.startswith(LOCAL_PREFIX):
        raise ZooError(f"{name}: a local folder has nothing to download; load it with zoo.create({name!r})")
    from ..weights import fetch  # http and ssl: only when downloading, not for every zoo command

    resolved = default_registry().resolve(name)
    card = resolved.card
    for tag in _tags(resolved, all_tags=args.all_tags):
        yield f"{card.name}.{tag}", fetch(card, tag, token=args.token, force=args.force,
                                           progress=not args.quiet and not args.json)


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
