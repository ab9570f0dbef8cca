"""The model a command works on: by name or from a folder, with its class names."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..cards import card_labels, card_of
from ..factory import create
from ..names import LOCAL_PREFIX, is_saved_name
from ..registry import default_registry

if TYPE_CHECKING:
    from torch import nn


def model_source(name: str) -> str:
    """`name` as `zoo.create` reads it: a folder on disk stands for ``local-dir:FOLDER``."""
    if not is_saved_name(name) and os.path.isdir(name):
        return f"{LOCAL_PREFIX}{name}"
    return name


def load_model(name: str) -> nn.Module:
    """The model to evaluate or predict with: a saved one as it was saved, a registered one with its weights."""
    source = model_source(name)
    return create(source) if is_saved_name(source) else create(source, pretrained=True)


def model_to_finetune(name: str, *, num_classes: int, scratch: bool) -> nn.Module:
    """The model to fine-tune, with a head of `num_classes`: pretrained when it has weights, unless `scratch`."""
    source = model_source(name)
    if is_saved_name(source):
        return create(source, pretrained=not scratch, num_classes=num_classes)
    card = default_registry().get_card(source)
    has_weights = card.has_weights or bool(card.recipe and card.recipe.options.get("pretrained"))
    return create(source, pretrained=has_weights and not scratch, num_classes=num_classes)


def model_labels(model: nn.Module) -> list[str] | None:
    """The class names `model` predicts, in output order, or None if its card does not say."""
    return card_labels(card_of(model))
