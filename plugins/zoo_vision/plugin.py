"""Registers the image family. zoo imports this module to list models, so it imports no torch."""
from __future__ import annotations

from .catalog import model_cards
from .recipes import RECIPES


def register(registry) -> None:
    for card in model_cards():
        registry.register(card)
    for recipe in RECIPES:
        registry.register(recipe)
