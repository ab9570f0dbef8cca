"""Registers the timm family from catalog.json. zoo imports this module to list models: no torch, no timm."""
from __future__ import annotations

import zoo

from .catalog import model_cards
from .recipes import RECIPES


def register(registry: zoo.Registrar) -> None:
    for card in model_cards():
        registry.register(card)
    for recipe in RECIPES:
        registry.register(recipe)
