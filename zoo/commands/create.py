"""``zoo create``: build a model and print what was built (class, parameters, output shape)."""
from __future__ import annotations

import argparse

from ..cards import card_of
from ..factory import create
from .options import Subcommands, non_negative_int
from .output import print_json


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("create", help="build a model and summarise it (parameters, trainable, output shape)")
    p.add_argument("name", help="model, recipe, alias, name.tag, local-dir:PATH or hf-hub:org/repo")
    p.add_argument("--pretrained", action="store_true", default=None, help="load the default (or tagged) weights")
    p.add_argument("--num-classes", type=non_negative_int, help="classes of a new head; 0 removes the head")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_create)


def cmd_create(args: argparse.Namespace) -> int:
    model = create(args.name, pretrained=args.pretrained, num_classes=args.num_classes)
    card = card_of(model)
    params = list(model.parameters())
    summary = {
        "name": card.name,
        "class": f"{type(model).__module__}.{type(model).__name__}",
        "parameters": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
        "num_classes": card.num_classes,
        "weights": card.default_weights,
        "head": card.head,
    }
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key + ':':13} {value if value is not None else '-'}")
    return 0
