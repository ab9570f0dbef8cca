"""The model's own helpers, plain functions for every zoo-created model (no class is patched):

- `forward_features(model, x)`: unpooled features (image: the last stage's map ``[B, C, H, W]``;
  text: the last hidden states ``[B, T, D]``; speech: the encoder output ``[B, T', D]``);
- `forward_pooled(model, x)`: what the head reads (the input of the card's ``head`` module);
- `forward_head(model, pooled)`: the card's head applied, so in eval mode
  ``forward_head(m, forward_pooled(m, x))`` equals ``m(x)``;
- `forward_intermediates(model, x, indices=None, intermediates_only=False)`: timm's semantics;
- `pooled_intermediates(model, x, indices=None)`: each chosen layer pooled to one vector per example;
- `remove_head(model)` and `reset_head(model, num_classes)` to swap or drop the head.

`x` is what the model's forward takes: a tensor, a tuple of positional arguments, or a dict of
keyword arguments (``{"input_ids": ..., "attention_mask": ...}`` for text, ``(waveforms, lengths)``
for speech). Image models are served from their card's `feature_stages` (`zoo.feature_maps`). A module
a family defines itself takes part by defining ``forward_intermediates(*inputs, indices=None,
intermediates_only=False)``, ``forward_features(*inputs)`` and ``num_intermediates``, and optionally
``pooled_intermediates(*inputs, indices=None)`` and ``forward_pooled(*inputs)`` (used when the card
names no head); the functions here call those methods when a model has them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from .cards import ModelCard, card_of
from .errors import InvalidArgumentError, ZooError
from .feature_maps import (
    FeatureInfo,
    FeaturesModel,
    feature_indices,
    features_model,
    head_input,
    split_inputs,
    stage_listing,
    stage_maps,
    take_indices,
)
from .finetune.heads import get_head, reset_head

__all__ = [
    "FeatureInfo", "FeaturesModel", "feature_indices", "features_model", "forward_features", "forward_head",
    "forward_intermediates", "forward_pooled", "num_intermediates", "pooled_intermediates", "remove_head",
    "reset_head", "take_indices",
]


# ---------------------------------------------------------------------------- the model's helpers


def _own(model: nn.Module) -> bool:
    """Whether the model's own module defines the intermediate-layer methods (text and speech encoders)."""
    return callable(getattr(model, "forward_intermediates", None))


def _unwrapped(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, FeaturesModel) else model


def _image_card(model: nn.Module, wanted: str) -> ModelCard:
    """The card of an image model with feature stages, or an error saying why `wanted` is not offered."""
    card = card_of(model)
    if card.modality != "image":
        raise InvalidArgumentError(
            f"model {card.name!r} ({type(_unwrapped(model)).__name__}) offers no {wanted}: its module defines no "
            f"forward_intermediates. Text transformers and wav2vec 2.0 / HuBERT / WavLM encoders do; for this model "
            f"forward_pooled(model, x) gives the pooled features")
    if not card.feature_stages:
        raise InvalidArgumentError(f"model {card.name!r} declares no feature stages (card field feature_stages), "
                                   f"so it offers no {wanted}")
    return card


def num_intermediates(model: nn.Module) -> int:
    """How many intermediate layers `forward_intermediates` chooses from (an image model's feature stages)."""
    inner = _unwrapped(model)
    if _own(inner):
        count = getattr(inner, "num_intermediates", None)
        if not isinstance(count, int):
            raise ZooError(f"{type(inner).__name__} defines forward_intermediates but no num_intermediates")
        return count
    return len(_image_card(model, "intermediate layers").feature_stages)


def forward_features(model: nn.Module, x: Any) -> torch.Tensor:
    """Unpooled features: an image model's last feature stage (``NCHW``), a text model's last hidden
    states ``[B, T, D]``, a speech encoder's output ``[B, T', D]``."""
    inner = _unwrapped(model)
    if _own(inner):
        args, kwargs = split_inputs(x)
        features: torch.Tensor = inner.forward_features(*args, **kwargs)  # type: ignore[operator]
        return features
    card = _image_card(model, "unpooled features")
    last = len(card.feature_stages) - 1
    return stage_maps(inner, card, x, [last])[last]


def forward_pooled(model: nn.Module, x: Any) -> torch.Tensor:
    """Pre-logits: what the card's ``head`` module reads (for a model whose head was removed, its output).

    The forward pass stops at the head. A model whose card names no head (a speech encoder) gives its
    own ``forward_pooled`` (the mean over valid frames).
    """
    inner = _unwrapped(model)
    card = card_of(model)
    if card.head and not isinstance(model, FeaturesModel):
        return head_input(inner, x, get_head(inner)[0])
    own = getattr(inner, "forward_pooled", None)
    if callable(own):
        args, kwargs = split_inputs(x)
        pooled: torch.Tensor = own(*args, **kwargs)
        return pooled
    raise InvalidArgumentError(f"model {card.name!r} has no head to read pooled features from"
                               + (" (a features_only model returns feature maps; create it without features_only)"
                                  if isinstance(model, FeaturesModel) else "; its card names none"))


def forward_head(model: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """The card's head applied to `pooled` (what `forward_pooled` gives): the logits."""
    if isinstance(model, FeaturesModel):
        raise InvalidArgumentError(f"model {card_of(model).name!r} was created with features_only=True and has "
                                   "no head")
    logits: torch.Tensor = get_head(model)[1](pooled)
    return logits


def forward_intermediates(
    model: nn.Module, x: Any, indices: int | Sequence[int] | None = None, intermediates_only: bool = False,
) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
    """Intermediate layers' outputs, as timm's ``forward_intermediates``.

    `indices`: None for every layer, an int ``n`` for the last ``n``, or a list of indices (negative
    ones count from the end); out of range is an error listing the valid ones. Image models give their
    feature stages' maps (``NCHW``), text transformers each encoder layer's hidden states ``[B, T, D]``
    (computed with the attention mask), speech encoders each transformer layer's output ``[B, T', D]``
    (computed with the lengths). Returns the list in the order asked, or ``(final, list)`` when not
    `intermediates_only`, where ``final`` is `forward_features`. With `intermediates_only` the forward
    pass stops after the last layer asked for.
    """
    inner = _unwrapped(model)
    if _own(inner):
        args, kwargs = split_inputs(x)
        result: Any = inner.forward_intermediates(  # type: ignore[operator]
            *args, **kwargs, indices=indices, intermediates_only=intermediates_only)
        return result  # type: ignore[no-any-return]
    final, found = _image_intermediates(model, x, indices, with_final=not intermediates_only)
    return found if final is None else (final, found)


def _image_intermediates(model: nn.Module, x: Any, indices: int | Sequence[int] | None, *, with_final: bool,
                         ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
    """An image model's stage maps at `indices`, and its last stage's map when `with_final`."""
    card = _image_card(model, "intermediate layers")
    stages = card.feature_stages
    taken = take_indices(len(stages), indices, what="feature stages", listing=stage_listing(card))
    last = len(stages) - 1
    maps = stage_maps(_unwrapped(model), card, x, sorted({*taken, last} if with_final else set(taken)))
    return (maps[last] if with_final else None), [maps[i] for i in taken]


def pooled_intermediates(model: nn.Module, x: Any, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
    """`forward_intermediates` pooled to ``[B, D]`` per layer: an image map averaged over its pixels, text
    hidden states over the real tokens (attention mask), speech hidden states over the valid frames."""
    inner = _unwrapped(model)
    own = getattr(inner, "pooled_intermediates", None)
    if _own(inner) and callable(own):
        args, kwargs = split_inputs(x)
        pooled: list[torch.Tensor] = own(*args, **kwargs, indices=indices)
        return pooled
    if _own(inner):
        raise InvalidArgumentError(f"{type(inner).__name__} defines forward_intermediates but not "
                                   "pooled_intermediates, so zoo does not know how to pool its layers")
    _, maps = _image_intermediates(model, x, indices, with_final=False)
    return [m.mean(dim=(2, 3)) for m in maps]


def remove_head(model: nn.Module) -> nn.Module:
    """Replace the head with ``nn.Identity`` (``reset_head(model, 0)``): the model then returns its pooled
    features. Returns `model`."""
    reset_head(model, 0)
    return model
