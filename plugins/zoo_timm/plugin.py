"""Registers the timm family. zoo imports this module to list models: no torch, no timm.

The family's 1,300-odd cards are registered as a catalogue: registering reads their names from index.json
(a small file beside catalog.json), listing reads a summary of each from it when first asked, and the 4.6 MB
catalog.json is read when a card is first looked up.
"""
from __future__ import annotations

import zoo

from .catalog import index, make_card, names
from .recipes import RECIPES


def register(registry: zoo.Registrar) -> None:
    registry.register_catalogue(index, make_card, names=names())
    for recipe in RECIPES:
        registry.register(recipe)
