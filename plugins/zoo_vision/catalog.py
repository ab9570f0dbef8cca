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


def model_cards(path: Path = CATALOG) -> list[zoo.ModelCard]:
    """One card per catalogue entry; each label list is shared by the weights that use it. Entries without
    ``create_options`` get their family's from `zoo_vision.options`."""
    data = load_catalog(path)
    labels = {key: tuple(names) for key, names in data["labels"].items()}
    cards = []
    for entry in data["cards"]:
        weights = {}
        for tag, w in entry.get("weights", {}).items():
            key = w.get("labels")
            if key is not None and key not in labels:
                raise zoo.PluginError(f"{path}: weights {entry['name']}.{tag} name label list {key!r}, "
                                      f"which the file does not hold; regenerate it")
            weights[tag] = zoo.WeightsCard.from_dict({**w, "labels": labels.get(key)})
        options = entry.get("create_options") or create_options(entry["name"], entry.get("family"))
        cards.append(zoo.ModelCard.from_dict({**entry, "weights": weights, "create_options": options}))
    return cards
