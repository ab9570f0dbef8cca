"""The card of a module the trainer is given, when it has one (the trainer trains any module)."""
from __future__ import annotations

from ..cards import ModelCard, card_of
from ..errors import ZooError


def card_or_none(model: object) -> ModelCard | None:
    """The card `model` carries, or None for a module zoo did not create."""
    try:
        return card_of(model)
    except ZooError:
        return None
