"""``zoo list``, ``zoo info`` and ``zoo plugins``: the catalogue, without importing torch."""
from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from typing import Any

from .. import get_card
from ..cards import MODALITIES, ModelCard
from ..create_options import supported
from ..errors import InvalidArgumentError, ZooError
from ..names import is_saved_name
from ..plugins import list_plugins
from ..registry import Registry, default_registry
from .options import Subcommands
from .output import folded, print_json, print_table, terminal_width

# `zoo list` on a narrow terminal: the columns left out first, then the ones cut short; NAME stays whole
# (and so does the column the rows are sorted by)
_LIST_DROPPABLE = ("modality", "family", "gflops", "params", "acc@1")
_LIST_SHORTENABLE = ("weights", "task")
_NUMERIC = ("params", "gflops", "acc@1")
_SORT_ALIASES = {"acc1": "acc@1", "acc5": "acc@5", "num_params": "params"}
# Licences `zoo list --license permissive` keeps (SPDX identifiers; any BSD-* too): commercial use allowed
PERMISSIVE_LICENSES = frozenset({
    "MIT", "MIT-0", "Apache-2.0", "0BSD", "ISC", "Zlib", "Unlicense", "CC0-1.0", "CC-BY-3.0", "CC-BY-4.0",
    "PSF-2.0", "BSL-1.0",
})
_PERMISSIVE_LOWER = frozenset(name.lower() for name in PERMISSIVE_LICENSES)
_SUFFIXES = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "B": 10**9}


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", help="shell wildcard, e.g. 'resnet*'")
    p.add_argument("--task", help="e.g. image-classification")
    p.add_argument("--modality", choices=MODALITIES)
    p.add_argument("--family")
    p.add_argument("--pretrained", action="store_true", help="only models with weights, one row per weights tag")
    p.add_argument("--wide", action="store_true",
                   help="every column and every weights tag in full, however wide (the table otherwise fits the "
                        "terminal: it leaves out MODALITY, FAMILY, GFLOPS, PARAMS and ACC@1 in that order, but not "
                        "the --sort column, then cuts WEIGHTS and TASK short)")
    p.add_argument("--exclude", action="append", metavar="PATTERN",
                   help="leave out names matching this shell wildcard (repeatable)")
    p.add_argument("--sort", default="name", metavar="KEY",
                   help="name (default), params or gflops (smallest first), acc1 or any metric name such as acc@5 "
                        "(highest first); models without the figure come last")
    p.add_argument("--max-params", type=_count, metavar="N",
                   help="at most N parameters: 30M, 1.5G, 5000000 (models without a count are left out)")
    p.add_argument("--min-acc1", type=float, metavar="PCT",
                   help="top-1 accuracy at least PCT, e.g. 80 (models without an acc@1 are left out)")
    p.add_argument("--license", metavar="LICENSE",
                   help="weights licence: permissive (MIT, Apache-2.0, BSD-*, ...), non-commercial (*-NC-*) or an "
                        "SPDX id such as CC-BY-NC-4.0 (models without weights are left out)")
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
    names = registry.list_models(args.pattern, exclude=args.exclude, task=args.task, modality=args.modality,
                                 family=args.family, pretrained=args.pretrained)
    rows = [_row(registry, name) for name in names]
    rows = [r for r in rows if _kept(r, args)]
    key = _SORT_ALIASES.get(args.sort, args.sort)
    if key != "name":
        rows = _sorted(rows, key)
    if args.json:
        print_json(rows)
        return 0
    columns = ["params", "gflops", "acc@1", *([key] if key not in ("name", *_NUMERIC) else [])]
    columns = [c for c in columns if any(_figure(r, c) for r in rows)]  # no column without figures
    headers = ["name", "task", "modality", "family", *columns, "weights"]
    print_table(
        headers,
        [[r["name"], r["task"] or "", r["modality"] or "", r["family"] or "", *(_figure(r, c) for c in columns),
          _weights_cell(r, wide=args.wide)] for r in rows],
        width=None if args.wide else terminal_width(),
        droppable=[c for c in _LIST_DROPPABLE if c in headers and c != key], shortenable=_LIST_SHORTENABLE,
        right=columns,
    )
    return 0


def _count(text: str) -> int:
    """A parameter count as `zoo list --max-params` takes it: ``30M``, ``1.5G``, ``500k``, ``5000000``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kKmMgGbB]?)\s*", text.replace("_", ""))
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count such as 30M, 1.5G or 5000000")
    return int(float(match.group(1)) * _SUFFIXES[match.group(2).upper()])


def license_matches(license: str | None, wanted: str) -> bool:
    """Whether a weights licence (an SPDX id) is what `zoo list --license` asks for: ``permissive``,
    ``non-commercial`` or one SPDX id (any case)."""
    if license is None:
        return False
    if wanted.lower() == "permissive":
        # SPDX ids compare without case, as the Hub writes them lower-case ("apache-2.0", "mit")
        return license.lower() in _PERMISSIVE_LOWER or license.lower().startswith("bsd-")
    if wanted.lower() in ("non-commercial", "noncommercial", "nc"):
        return "-NC-" in f"{license.upper()}-"
    return license.lower() == wanted.lower()


def _kept(row: Mapping[str, Any], args: argparse.Namespace) -> bool:
    if args.max_params is not None and (row["num_params"] is None or row["num_params"] > args.max_params):
        return False
    if args.min_acc1 is not None and (row["metrics"].get("acc@1") is None or row["metrics"]["acc@1"] < args.min_acc1):
        return False
    return args.license is None or license_matches(row["license"], args.license)


def _sorted(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Rows by `key`: params and gflops smallest first, a metric highest first; rows without it last, by name."""
    field = {"params": "num_params", "gflops": "gflops"}.get(key)
    values = [r[field] if field else r["metrics"].get(key) for r in rows]
    if all(v is None for v in values) and rows:
        known = sorted({m for r in rows for m in r["metrics"]})
        raise InvalidArgumentError(f"zoo list --sort {key}: no listed model has it; sort by name, params, gflops, "
                                   f"acc1 or a metric the listed weights publish: {', '.join(known) or 'none'}")
    sign = 1 if field else -1
    order = sorted(range(len(rows)), key=lambda i: (values[i] is None, sign * (values[i] or 0)))
    return [rows[i] for i in order]


def _row(registry: Registry, name: str) -> dict[str, Any]:
    """One listed model; a name that cannot be looked up gets its error instead of its card.

    Parameters, GFLOPs, metrics and licence are those of the row's weights: the default weights of a model,
    the tagged ones of a ``name.tag`` (None and ``{}`` without weights).
    """
    try:
        card = registry.summary(name)  # not the whole card: a catalogue's cards stay unbuilt
    except ZooError as exc:
        return {"name": name, "task": None, "modality": None, "family": None, "weights": [], "default_weights": None,
                "recipe_of": None, "num_params": None, "gflops": None, "metrics": {}, "license": None,
                "error": str(exc)}
    tag = name.partition(".")[2]
    weights = card.weights.get(tag or card.default_weights or "")
    return {
        "name": name, "task": card.task, "modality": card.modality, "family": card.family,
        "weights": [tag] if tag else sorted(card.weights),
        "default_weights": tag or card.default_weights,
        "recipe_of": card.recipe.model if card.recipe else None,
        "num_params": weights.num_params if weights else None,
        "gflops": weights.gflops if weights else None,
        "metrics": dict(weights.metrics) if weights else {},
        "license": weights.license if weights else None,
    }


def _figure(row: Mapping[str, Any], column: str) -> str:
    """A row's cell in a numeric column: params, gflops or a metric."""
    if column == "params":
        return _params_cell(row["num_params"])
    return _number_cell(row["gflops"] if column == "gflops" else row["metrics"].get(column))


def _params_cell(count: int | None) -> str:
    """``25.6M``, ``1.2G``, ``950K``: what `--max-params` takes."""
    if count is None:
        return ""
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if count >= scale:
            return f"{count / scale:.1f}{suffix}"
    return str(count)


def _number_cell(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.2f}"


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
        print_json({**card.to_dict(), "plugin": plugin, "distribution": distribution,
                    "supported_options": list(supported(card))})
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
        ("create options", ", ".join(supported(card))),
        ("default weights", card.default_weights),
    ]
    for key, value in lines:
        if value not in (None, ""):
            print(f"{key + ':':{_KEY_WIDTH - 1}} {folded(str(value), indent=_KEY_WIDTH, width=width)}")
    for tag, weights in card.weights.items():
        mark = " (default)" if tag == card.default_weights else ""
        print(f"weights {tag}{mark}:")
        details = [(key, getattr(weights, key)) for key in
                   ("source", "filename", "sha256", "num_classes", "num_params", "gflops", "file_size", "license",
                    "description")]
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
    from ..weights import cached_path  # the weights layer (http, ssl) only for `zoo info`, not `zoo list`

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
