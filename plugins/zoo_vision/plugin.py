"""Registers the image family. zoo imports this module to list models, so it imports no torch.

The catalogue's cards are registered as a catalogue: listing reads a summary of each, and a card is built
(and checked) the first time it is looked up.
"""
from __future__ import annotations

import zoo

from .catalog import index, make_card
from .recipes import RECIPES


def register(registry: zoo.Registrar) -> None:
    registry.register_catalogue(index(), make_card)
    for recipe in RECIPES:
        registry.register(recipe)
