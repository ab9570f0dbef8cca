"""Read ``catalog.json`` into model cards (no torch: the file is plain data)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import zoo

from .options import create_options

CATALOG = Path(__file__).with_name("catalog.json")
FORMAT_VERSION = 1
_SUMMARY_KEYS = ("num_params", "gflops", "metrics", "license")  # what listing reads of a weights entry


@lru_cache(maxsize=1)
def load_catalog(path: Path = CATALOG) -> dict[str, Any]:
    """The catalogue as written by ``python -m zoo_vision.generate``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise zoo.PluginError(f"cannot read the image catalogue {path}: {exc}. "
                              "Reinstall zoo, or regenerate it with: python -m zoo_vision.generate") from exc
    if data.get("format") != FORMAT_VERSION:
        raise zoo.PluginError(f"{path} has format {data.get('format')!r}, this zoo_vision reads {FORMAT_VERSION}; "
                              "regenerate it with: python -m zoo_vision.generate")
    return data


@lru_cache(maxsize=4)
def _label_lists(path: Path = CATALOG) -> dict[str, tuple[str, ...]]:
    """The catalogue's label lists as tuples, made once so every weights card that uses one shares it."""
    return {key: tuple(names) for key, names in load_catalog(path)["labels"].items()}


@lru_cache(maxsize=4)
def _entries(path: Path = CATALOG) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in load_catalog(path)["cards"]}


def index(path: Path = CATALOG) -> list[dict[str, Any]]:
    """What listing reads, one `zoo.cards.CardSummary` mapping per card; the cards are built when looked up."""
    return [{"name": entry["name"], "task": entry["task"], "modality": entry["modality"],
             "family": entry.get("family"), "aliases": entry.get("aliases", ()),
             "default_weights": entry.get("default_weights"),
             "weights": {tag: {key: w[key] for key in _SUMMARY_KEYS if key in w}
                         for tag, w in entry.get("weights", {}).items()}}
            for entry in load_catalog(path)["cards"]]


def make_card(name: str, path: Path = CATALOG) -> zoo.ModelCard:
    """The card of one catalogue entry; its label lists are shared with the other cards. An entry without
    ``create_options`` gets its family's from `zoo_vision.options`."""
    entry, labels = _entries(path)[name], _label_lists(path)
    weights = {}
    for tag, w in entry.get("weights", {}).items():
        key = w.get("labels")
        if key is not None and key not in labels:
            raise zoo.PluginError(f"{path}: weights {name}.{tag} name label list {key!r}, "
                                  f"which the file does not hold; regenerate it")
        weights[tag] = zoo.WeightsCard.from_dict({**w, "labels": labels.get(key)})
    options = entry.get("create_options") or create_options(name, entry.get("family"))
    return zoo.ModelCard.from_dict({**entry, "weights": weights, "create_options": options})


def model_cards(path: Path = CATALOG) -> list[zoo.ModelCard]:
    """Every card of the catalogue, built now (the plugin registers them to be built on first use instead)."""
    return [make_card(name, path) for name in _entries(path)]
