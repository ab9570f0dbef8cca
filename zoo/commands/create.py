"""``zoo create``: build a model and print what was built (see `SUMMARY`)."""
from __future__ import annotations

import argparse
from typing import Any

from ..cards import card_of
from ..factory import create
from .options import Subcommands, non_negative_int
from .output import print_json

# What `zoo create` prints, in order; its --help promises these and nothing else.
SUMMARY = {
    "name": "the model's name",
    "class": "its Python class",
    "parameters": "its parameter count",
    "trainable": "how many of them train",
    "num_classes": "its outputs (classes)",
    "weights": "the weights tag it was loaded with (- for none)",
    "head": "its classifier module",
}


def add_commands(sub: Subcommands) -> None:
    promised = ", ".join(SUMMARY.values())
    p = sub.add_parser("create", help="build a model and summarise it (class, parameters, classes, weights, head)",
                       description=f"Build a model as zoo.create does and print {promised}.")
    p.add_argument("name", help="model, recipe, alias, name.tag, local-dir:PATH or hf-hub:org/repo")
    p.add_argument("--pretrained", action="store_true", default=None, help="load the default (or tagged) weights")
    p.add_argument("--num-classes", type=non_negative_int, help="classes of a new head; 0 removes the head")
    p.add_argument("--json", action="store_true", help=f"print the summary as a JSON object with keys "
                                                         f"{', '.join(SUMMARY)}")
    p.set_defaults(func=cmd_create)


def cmd_create(args: argparse.Namespace) -> int:
    model = create(args.name, pretrained=args.pretrained, num_classes=args.num_classes)
    summary = _summary(model)
    if args.json:
        print_json(summary)
    else:
        for key, value in summary.items():
            print(f"{key + ':':13} {value if value is not None else '-'}")
    return 0


def _summary(model: Any) -> dict[str, Any]:
    """The `SUMMARY` of a built model."""
    card = card_of(model)
    params = list(model.parameters())
    return {
        "name": card.name,
        "class": f"{type(model).__module__}.{type(model).__name__}",
        "parameters": sum(p.numel() for p in params),
        "trainable": sum(p.numel() for p in params if p.requires_grad),
        "num_classes": card.num_classes,
        "weights": card.default_weights,
        "head": card.head,
    }
