"""The model a command works on: by name or from a folder, with its class names."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .. import get_card
from ..cards import ModelCard, card_labels, card_of
from ..errors import InvalidArgumentError
from ..factory import create
from ..names import is_saved_name, model_source
from ..registry import default_registry

if TYPE_CHECKING:
    from torch import nn


def load_model(name: str) -> nn.Module:
    """The model to evaluate or predict with: a saved one as it was saved, a registered one with its weights."""
    from ..pipelines import load_model as load  # reason: zoo.pipelines imports torch; commands load it only to run

    return load(name)


def finetune_card(name: str) -> ModelCard:
    """The card of the model `zoo finetune` would build from `name`, read without building it."""
    return get_card(model_source(name))


def model_to_finetune(name: str, *, num_classes: int, scratch: bool, strategy_given: bool) -> nn.Module:
    """The model to fine-tune, with a head of `num_classes`: pretrained when it has weights, unless `scratch`.

    From random weights with a strategy given (``--scratch --strategy ...``) the user chose what trains, so
    a recipe's freezing is not applied (``freeze=False``); see `check_scratch` for the case without one.
    """
    source = model_source(name)
    freeze = False if scratch and strategy_given else None
    if is_saved_name(source):
        return create(source, pretrained=not scratch, num_classes=num_classes, freeze=freeze)
    card = default_registry().get_card(source)
    has_weights = card.has_weights or bool(card.recipe and card.recipe.options.get("pretrained"))
    return create(source, pretrained=has_weights and not scratch, num_classes=num_classes, freeze=freeze)


def check_scratch(card: ModelCard) -> None:
    """Refuse random weights (``--scratch``) for a recipe that freezes part of the model, saying what to do."""
    frozen = card.recipe.options.get("freeze") if card.recipe else None
    if frozen in (None, False):
        return
    raise InvalidArgumentError(
        f"{card.name!r} freezes part of the model (freeze={frozen!r}) to fine-tune pretrained weights; from random "
        "weights (--scratch) that part would stay random and only the rest would learn. Drop --scratch to start "
        "from its weights, or give --strategy (no_freeze trains everything) to train it from random weights")


def model_labels(model: nn.Module) -> list[str] | None:
    """The class names `model` predicts, in output order, or None if its card does not say."""
    return card_labels(card_of(model))
