"""``zoo list``, ``zoo info`` and ``zoo plugins``: the catalogue, without importing torch."""
from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from .. import get_card
from ..cards import MODALITIES, ModelCard
from ..errors import ZooError
from ..names import is_saved_name
from ..plugins import list_plugins
from ..registry import Registry, default_registry
from ..weights import cached_path
from .options import Subcommands
from .output import folded, print_json, print_table, terminal_width

# `zoo list` on a narrow terminal: the columns left out first, then the ones cut short; NAME stays whole
_LIST_DROPPABLE = ("modality", "family")
_LIST_SHORTENABLE = ("weights", "task")


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", help="shell wildcard, e.g. 'resnet*'")
    p.add_argument("--task", help="e.g. image-classification")
    p.add_argument("--modality", choices=MODALITIES)
    p.add_argument("--family")
    p.add_argument("--pretrained", action="store_true", help="only models with weights, one row per weights tag")
    p.add_argument("--wide", action="store_true",
                   help="every column and every weights tag in full, however wide (the table otherwise fits the "
                        "terminal: it leaves out MODALITY, then FAMILY, then cuts WEIGHTS and TASK short)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("info", help="show a model's card")
    p.add_argument("name", help="model, recipe, alias or name.tag")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("plugins", help="show plugins, their status and errors")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)


def cmd_list(args: argparse.Namespace) -> int:
    registry = default_registry()
    names = registry.list_models(
        args.pattern, task=args.task, modality=args.modality, family=args.family, pretrained=args.pretrained
    )
    rows = [_row(registry, name) for name in names]
    if args.json:
        print_json(rows)
        return 0
    print_table(
        ["name", "task", "modality", "family", "weights"],
        [[r["name"], r["task"] or "", r["modality"] or "", r["family"] or "", _weights_cell(r, wide=args.wide)]
         for r in rows],
        width=None if args.wide else terminal_width(), droppable=_LIST_DROPPABLE, shortenable=_LIST_SHORTENABLE,
    )
    return 0


def _row(registry: Registry, name: str) -> dict[str, Any]:
    """One listed model; a name that cannot be looked up gets its error instead of its card."""
    try:
        card = registry.get_card(name)
    except ZooError as exc:
        return {"name": name, "task": None, "modality": None, "family": None, "weights": [], "default_weights": None,
                "recipe_of": None, "error": str(exc)}
    tag = name.partition(".")[2]
    return {
        "name": name, "task": card.task, "modality": card.modality, "family": card.family,
        "weights": [tag] if tag else sorted(card.weights),
        "default_weights": tag or card.default_weights,
        "recipe_of": card.recipe.model if card.recipe else None,
    }


def _weights_cell(row: Mapping[str, Any], *, wide: bool) -> str:
    """The default weights tag, and how many others there are (`wide`: every tag, the default first)."""
    if row.get("error"):
        return f"unusable: see `zoo info {row['name']}`"
    if row["recipe_of"]:
        return f"recipe: {row['recipe_of']}"
    tags = list(row["weights"])
    if not tags:
        return ""
    first = row["default_weights"] if row["default_weights"] in tags else tags[0]
    others = [tag for tag in tags if tag != first]
    if wide:
        return ", ".join([first, *others])
    return f"{first} (+{len(others)})" if others else first


def cmd_info(args: argparse.Namespace) -> int:
    if is_saved_name(args.name):
        card, plugin, distribution = get_card(args.name), "saved model", args.name
    else:
        registry = default_registry()
        card = registry.get_card(args.name)
        claim = registry.claim(args.name)
        plugin, distribution = claim.plugin, claim.distribution
    if args.json:
        print_json({**card.to_dict(), "plugin": plugin, "distribution": distribution})
        return 0
    _print_card(card, f"{plugin} ({distribution})")
    return 0


_KEY_WIDTH = 17  # "default weights: " and the values after it, in one column


def _print_card(card: ModelCard, plugin: str) -> None:
    width = terminal_width()
    lines = [
        ("name", card.name), ("description", card.description), ("task", card.task), ("modality", card.modality),
        ("family", card.family), ("plugin", plugin), ("builder", card.builder),
        ("recipe of", card.recipe.model if card.recipe else None),
        ("recipe options", _kv(card.recipe.options) if card.recipe else None),
        ("required", _required(card)),
        ("defaults", _kv(card.defaults)), ("head", card.head), ("num_features", card.num_features),
        ("layer groups", ", ".join(card.layer_groups)), ("aliases", ", ".join(card.aliases)),
        ("input", _kv(card.input.__dict__) if card.input else None),
        ("default weights", card.default_weights),
    ]
    for key, value in lines:
        if value not in (None, ""):
            print(f"{key + ':':{_KEY_WIDTH - 1}} {folded(str(value), indent=_KEY_WIDTH, width=width)}")
    for tag, weights in card.weights.items():
        mark = " (default)" if tag == card.default_weights else ""
        print(f"weights {tag}{mark}:")
        details = [(key, getattr(weights, key)) for key in
                   ("source", "filename", "sha256", "num_classes", "num_params", "file_size", "license", "description")]
        details += [("metrics", _kv(weights.metrics) if weights.metrics else None), ("cached", _cached(card, tag))]
        for key, value in details:
            if value not in (None, ""):
                print(f"  {key + ':':{_KEY_WIDTH - 3}} {folded(str(value), indent=_KEY_WIDTH, width=width)}")


def _required(card: ModelCard) -> str | None:
    """The `zoo.create` keywords a recipe needs, with how to give them."""
    if card.recipe is None or not card.recipe.required:
        return None
    names = ", ".join(card.recipe.required)
    example = ", ".join(f"{key}=..." for key in card.recipe.required)
    return (f"{names} (zoo.create({card.name!r}, {example}); "
            "zoo finetune sets num_classes from the data's classes)" if "num_classes" in card.recipe.required
            else f"{names} (zoo.create({card.name!r}, {example}))")


def _cached(card: ModelCard, tag: str) -> str:
    """Whether the weights are on disk (so `zoo.create` works offline); `zoo download` fetches them."""
    try:
        path = cached_path(card, tag)
    except (ZooError, ImportError, OSError) as exc:
        return f"unknown ({exc})"
    return f"yes ({path})" if path is not None else f"no (zoo download {card.name}.{tag})"


def _kv(mapping: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in mapping.items())


def cmd_plugins(args: argparse.Namespace) -> int:
    infos = list_plugins()
    if args.json:
        print_json([{**info.__dict__, "models": list(info.models)} for info in infos])
        return 0
    print_table(
        ["plugin", "distribution", "version", "status", "models", "error"],
        [[i.name, i.distribution, i.version, i.status, len(i.models), i.error or ""] for i in infos],
    )
    return 0
