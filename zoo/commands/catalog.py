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
from .output import print_json, print_table


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", help="shell wildcard, e.g. 'resnet*'")
    p.add_argument("--task", help="e.g. image-classification")
    p.add_argument("--modality", choices=MODALITIES)
    p.add_argument("--family")
    p.add_argument("--pretrained", action="store_true", help="only models with weights, one row per weights tag")
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
        [[r["name"], r["task"] or "", r["modality"] or "", r["family"] or "", _weights_cell(r)] for r in rows],
    )
    return 0


def _row(registry: Registry, name: str) -> dict[str, Any]:
    """One listed model; a name that cannot be looked up gets its error instead of its card."""
    try:
        card = registry.get_card(name)
    except ZooError as exc:
        return {"name": name, "task": None, "modality": None, "family": None, "weights": [], "recipe_of": None,
                "error": str(exc)}
    return {
        "name": name, "task": card.task, "modality": card.modality, "family": card.family,
        "weights": sorted(card.weights) if "." not in name else [name.partition(".")[2]],
        "recipe_of": card.recipe.model if card.recipe else None,
    }


def _weights_cell(row: Mapping[str, Any]) -> str:
    if row.get("error"):
        return f"unusable: see `zoo info {row['name']}`"
    if row["recipe_of"]:
        return f"recipe: {row['recipe_of']}"
    tags = row["weights"]
    return ", ".join(tags) if len(tags) <= 2 else f"{tags[0]} (+{len(tags) - 1})"


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


def _print_card(card: ModelCard, plugin: str) -> None:
    lines = [
        ("name", card.name), ("description", card.description), ("task", card.task), ("modality", card.modality),
        ("family", card.family), ("plugin", plugin), ("builder", card.builder),
        ("recipe of", card.recipe.model if card.recipe else None),
        ("recipe options", _kv(card.recipe.options) if card.recipe else None),
        ("defaults", _kv(card.defaults)), ("head", card.head), ("num_features", card.num_features),
        ("layer groups", ", ".join(card.layer_groups)), ("aliases", ", ".join(card.aliases)),
        ("input", _kv(card.input.__dict__) if card.input else None),
        ("default weights", card.default_weights),
    ]
    for key, value in lines:
        if value not in (None, ""):
            print(f"{key + ':':16} {value}")
    for tag, weights in card.weights.items():
        mark = " (default)" if tag == card.default_weights else ""
        print(f"weights {tag}{mark}:")
        for key in ("source", "filename", "sha256", "num_classes", "num_params", "file_size", "license", "description"):
            value = getattr(weights, key)
            if value not in (None, ""):
                print(f"  {key + ':':14} {value}")
        if weights.metrics:
            print(f"  {'metrics:':14} {_kv(weights.metrics)}")
        print(f"  {'cached:':14} {_cached(card, tag)}")


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
