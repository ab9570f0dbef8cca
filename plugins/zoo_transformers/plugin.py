"""Registers the transformers family from catalog.json. zoo imports this module to list models: no torch, no
transformers.

Two kinds of cards: ``transformers/<task>``, which build any transformers checkpoint of a model type no native
family claims (``extra["hf_model_types"] == ["*"]``; their card data is derived from the checkpoint by
`zoo_transformers.card.checkpoint_card`), and the curated checkpoints (``transformers/<name>``).
"""
from __future__ import annotations

import zoo

from .catalog import catalogue_cards


def register(registry: zoo.Registrar) -> None:
    for card in catalogue_cards():
        registry.register(card)
