"""Registers the timm family from catalog.json. zoo imports this module to list models: no torch, no timm.

The family's 1,300-odd cards are registered as a catalogue: listing reads a summary of each, taken
straight from the file, and a card is built the first time it is looked up.
"""
from __future__ import annotations

import zoo

from .catalog import index, make_card
from .recipes import RECIPES


def register(registry: zoo.Registrar) -> None:
    registry.register_catalogue(index(), make_card)
    for recipe in RECIPES:
        registry.register(recipe)
