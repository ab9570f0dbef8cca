"""Modules built fresh with a model's head but beside it: a card's ``extra["head_companions"]``.

A classifier is sometimes more than one module: DeBERTa's sequence classifier has a new ``pooler`` beside
``classifier``, a wav2vec2 audio classifier a ``projector``, DistilBERT a ``pre_classifier``. On a checkpoint
without a trained classifier those layers are as new as the head, but no single module path holds them and
the output layer (only the whole model does), so the card names them here, as a list of module paths.

They are treated as the head is:

- weights may leave their keys out (`zoo.weights.loading`), and they keep a fresh initialisation;
- ``freeze("backbone")`` and every strategy that freezes the backbone leave them trainable (the BatchNorm
  policy treats them as the head);
- layer-wise rates put them in the head's group;
- LoRA trains them whole and never adapts them;
- the feature cache is not used while they train (it records only what the head reads).

``num_classes=N`` still replaces only the head's output layer, and saving is unchanged.
"""
from __future__ import annotations

from collections.abc import Iterable

from .cards import ModelCard
from .errors import CardError

HEAD_COMPANIONS = "head_companions"


def head_companions(card: ModelCard) -> list[str]:
    """The module paths the card names in ``extra["head_companions"]`` (empty when it names none)."""
    value = card.extra.get(HEAD_COMPANIONS)
    if value is None:
        return []
    if not isinstance(value, (list, tuple)) or not all(isinstance(path, str) and path for path in value):
        raise CardError(f"card {card.name!r}: extra[{HEAD_COMPANIONS!r}] must be a list of module paths "
                        f"(non-empty strings, e.g. ['pooler']), got {value!r}")
    return list(value)


def head_parts(card: ModelCard) -> list[str]:
    """The card's head and its companions: every module that is new with the head and trains with it."""
    return ([card.head] if card.head else []) + head_companions(card)


def within(name: str, paths: Iterable[str]) -> bool:
    """Whether dotted `name` is one of `paths` or lies inside one of them."""
    return any(name == path or name.startswith(path + ".") for path in paths)
