"""Read ``catalog.json`` into model cards (no torch, no timm: the file is plain data).

Listing reads only ``index.json`` beside it: per card its architecture, default weights and each weights'
listed figures (`zoo.CardSummary`), a small fraction of the catalogue. Both are written by
``python -m zoo_timm.generate``; the full catalogue is read when the first card is built. Registering the
family reads only the names in the index (`names`): the summaries are made when a listing or a lookup of a
``timm/`` name first needs them, so creating a model of another family costs the catalogue nothing more.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import zoo

CATALOG = Path(__file__).with_name("catalog.json")
INDEX_NAME = "index.json"  # beside the catalogue it summarises
FORMAT_VERSION = 1
NAMESPACE = "timm/"
BUILDER = "zoo_timm.build:create_model"
SAVED_CONFIG = "zoo_timm.interchange:timm_config"  # timm's keys in a saved config.json (zoo.weights.saving)
FOLDER_KEY = "architecture"  # the config.json key of a checkpoint folder timm wrote
# The folder format the family reads (zoo.weights.saved_formats): timm's config.json, by zoo_timm.folder.
SAVED_FOLDER = {"saved_folder_key": FOLDER_KEY, "saved_folder_reader": "zoo_timm.folder:folder_card"}
INSTALL_HINT = 'pip install "zoo-models[timm]"'
TASK, MODALITY, FAMILY = "image-classification", "image", "timm"  # the same for every card in the file
_SUMMARY_KEYS = ("num_params", "gflops", "metrics", "license")  # what listing reads of a weights entry


def load_catalog(path: Path = CATALOG) -> dict[str, Any]:
    """The catalogue as written by ``python -m zoo_timm.generate`` (read once per path)."""
    return _read(path)


@lru_cache(maxsize=4)
def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise zoo.PluginError(f"cannot read the timm catalogue {path}: {exc}. "
                              "Reinstall zoo, or regenerate it with: python -m zoo_timm.generate") from exc
    if data.get("format") != FORMAT_VERSION:
        raise zoo.PluginError(f"{path} has format {data.get('format')!r}, this zoo_timm reads {FORMAT_VERSION}; "
                              "regenerate it with: python -m zoo_timm.generate")
    return data


def card_dict(entry: dict[str, Any], labels: dict[str, tuple[str, ...] | None], where: Path) -> dict[str, Any]:
    """One catalogue entry as `zoo.ModelCard.from_dict` takes it: the shared parts filled in.

    The file leaves out what every card shares (the builder, task, modality, the ``model_name`` default)
    and a weights entry's input spec when it is the card's; label lists are stored once, by key.
    """
    arch = entry["arch"]
    weights = {}
    for tag, w in entry.get("weights", {}).items():
        key = w.get("labels")
        if key is not None and key not in labels:
            raise zoo.PluginError(f"{where}: weights timm/{arch}.{tag} name label list {key!r}, which the file "
                                  "does not hold; regenerate it with: python -m zoo_timm.generate")
        weights[tag] = {**w, "labels": labels.get(key) if key is not None else None}
    card = {k: v for k, v in entry.items() if k != "arch"}
    extra = {**entry.get("extra", {}), "saved_config": SAVED_CONFIG, **SAVED_FOLDER}
    return {**card, "name": NAMESPACE + arch, "builder": BUILDER, "task": TASK,
            "modality": MODALITY, "family": FAMILY, "defaults": {"model_name": arch}, "weights": weights,
            "extra": extra}


@lru_cache(maxsize=4)
def _label_lists(path: Path = CATALOG) -> dict[str, tuple[str, ...]]:
    """The catalogue's label lists as tuples, made once so every weights card that uses one shares it."""
    return {key: tuple(str(name) for name in names) for key, names in load_catalog(path)["labels"].items()}


@lru_cache(maxsize=4)
def _entries(path: Path = CATALOG) -> dict[str, dict[str, Any]]:
    """Catalogue entries by card name."""
    return {NAMESPACE + entry["arch"]: entry for entry in load_catalog(path)["cards"]}


def index(path: Path = CATALOG) -> list[dict[str, Any]]:
    """What listing the family reads, one summary per card (no card is built).

    Read from the index beside the catalogue; derived from the catalogue itself when the index is missing or
    was written for another catalogue file (it records the catalogue's size, a check that costs one stat).
    """
    return [{"name": NAMESPACE + entry["arch"], "task": TASK, "modality": MODALITY, "family": FAMILY,
             "default_weights": entry.get("default_weights"), "weights": entry.get("weights", {})}
            for entry in _index_entries(path)]


_ARCH = re.compile(rb'^\{"arch":"([^"\\]+)"', re.MULTILINE)  # an index line's architecture (one card a line)


def names(path: Path = CATALOG) -> list[str]:
    """Every card name of the family, read from the index (what registering the family needs: its summaries are
    read by `index` when the family is first looked into).

    The names are picked out of the index's lines rather than parsed with the rest of it: registering is done
    by every process that creates a model, and parsing the index allocates some thousands of objects. The
    registry checks these names against `index` when it reads it.
    """
    try:
        data = path.with_name(INDEX_NAME).read_bytes()
        head = json.loads(data[:data.index(b'"cards":[')] + b'"cards":[]}')
        found = _ARCH.findall(data)
        if (head.get("format") == FORMAT_VERSION and head.get("catalog_bytes") == path.stat().st_size
                and len(found) == data.count(b'{"arch":')):
            return [NAMESPACE + arch.decode() for arch in found]
    except (OSError, ValueError, AttributeError):
        pass  # no usable index: read the names the slow way
    return [NAMESPACE + entry["arch"] for entry in _index_entries(path)]


def summaries(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    """The index entries of a catalogue: each card's architecture, default weights and weights' listed figures."""
    entries = []
    for entry in catalog["cards"]:
        weights = {tag: {key: w[key] for key in _SUMMARY_KEYS if key in w}
                   for tag, w in entry.get("weights", {}).items()}
        default = {"default_weights": entry["default_weights"]} if entry.get("default_weights") is not None else {}
        entries.append({"arch": entry["arch"], **default, **({"weights": weights} if weights else {})})
    return entries


def _index_entries(path: Path) -> list[dict[str, Any]]:
    listing = path.with_name(INDEX_NAME)
    try:
        data = json.loads(listing.read_bytes())
        if data.get("format") == FORMAT_VERSION and data.get("catalog_bytes") == path.stat().st_size:
            return list(data["cards"])
    except (OSError, ValueError, AttributeError, KeyError, TypeError):
        pass  # no usable index: the catalogue says the same, only slower to read
    return summaries(load_catalog(path))


def make_card(name: str, path: Path = CATALOG) -> zoo.ModelCard:
    """The card of one architecture, built and checked when it is first looked up.

    A label list is checked once per card here (its length against each weights' class count) and then
    shared by every weights card that uses it, rather than re-checked name by name: with a thousand
    weights of 1,000 to 22,000 names each, re-checking would be most of the time building cards takes.
    """
    entry = _entries(path)[name]
    labels = _label_lists(path)
    card = card_dict(entry, dict.fromkeys(labels), path)
    for tag, weights in card["weights"].items():
        key = entry["weights"][tag].get("labels")
        weights["labels"] = None
        made = zoo.WeightsCard.from_dict(weights)
        if key is not None:
            if made.num_classes != len(labels[key]):
                raise zoo.PluginError(f"{path}: weights {card['name']}.{tag} have {made.num_classes} classes "
                                      f"but label list {key!r} {len(labels[key])} names; regenerate it")
            object.__setattr__(made, "labels", labels[key])  # checked above; shared, read-only
        card["weights"][tag] = made
    return zoo.ModelCard.from_dict(card)


def model_cards(path: Path = CATALOG) -> list[zoo.ModelCard]:
    """Every card of the family, built now (the plugin registers them to be built on first use instead)."""
    return [make_card(name, path) for name in _entries(path)]
