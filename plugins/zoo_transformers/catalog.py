"""The curated catalogue (catalog.json) as cards: plain data, read without torch or transformers.

catalog.json is written by ``python -m zoo_transformers.generate``; each card's head, layer groups, LoRA
targets and feature stages were read off the model of the published shape, built on the meta device.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import zoo

CATALOG = Path(__file__).with_name("catalog.json")
FORMAT_VERSION = 1
BUILDER = "zoo_transformers.build:build_model"
SAVED_CONFIG = "zoo_transformers.interchange:transformers_config"


@lru_cache(maxsize=1)
def load_catalog(path: Path = CATALOG) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise zoo.PluginError(f"cannot read the transformers catalogue {path}: {exc}. Reinstall zoo, or "
                              "regenerate it with: python -m zoo_transformers.generate") from exc
    if data.get("format") != FORMAT_VERSION:
        raise zoo.PluginError(f"{path} has format {data.get('format')!r}, this zoo_transformers reads "
                              f"{FORMAT_VERSION}; regenerate it with: python -m zoo_transformers.generate")
    return data


def catalogue_cards(path: Path = CATALOG) -> list[zoo.ModelCard]:
    """One card per curated checkpoint, built by the family's builder from the repo's own config.json."""
    cards = []
    for entry in load_catalog(path)["cards"]:
        extra = {**entry.get("extra", {}), "saved_config": SAVED_CONFIG}
        cards.append(zoo.ModelCard.from_dict({**entry, "builder": BUILDER, "family": "transformers",
                                              "extra": extra}))
    return cards


def entry_for(key_map_name: str) -> dict[str, Any] | None:
    """The catalogue card whose weights name key map `key_map_name` (``catalogue__<name>``)."""
    for entry in load_catalog()["cards"]:
        for weights in entry.get("weights", {}).values():
            if str(weights.get("key_map", "")).endswith(":" + key_map_name):
                return dict(entry)
    return None
