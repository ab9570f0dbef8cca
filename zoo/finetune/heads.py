"""Classifier heads, found through the card's ``head`` path: no per-architecture code.

`reset_head` swaps the classification layer for one of a new size. When the module at
the head path is a container (``Sequential(Dropout, Linear)``), only its last Linear or
convolution is replaced, so dropout and pooling inside the head stay as the model had them.
The modules built fresh beside the head (``extra["head_companions"]``) stay for a new head and train
with it; with no head (``num_classes=0``) they become ``nn.Identity`` too, so the features returned are
what they read, not the output of layers nothing trained.
"""
from __future__ import annotations

import dataclasses

import torch
from torch import nn

from ..arguments import checked_num_classes
from ..cards import attach_card, card_of
from ..errors import InvalidArgumentError, ZooError
from ..head_companions import HEAD_COMPANIONS, head_companions
from ._select import examples

_OUTPUT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def get_head(model: nn.Module, head: str | None = None) -> tuple[str, nn.Module]:
    """``(path, module)`` of the classifier head the card declares (or of `head`)."""
    card = card_of(model)
    path = head or card.head
    if not path:
        raise ZooError(f"model {card.name!r} declares no head in its card; pass head='module.path' "
                       f"(top-level modules: {examples(n for n, _ in model.named_children())})")
    try:
        return path, model.get_submodule(path)
    except AttributeError:
        raise ZooError(f"model {card.name!r} has no module {path!r} to use as its head; "
                       f"top-level modules are {examples(n for n, _ in model.named_children())}") from None


def output_layer(head: nn.Module) -> tuple[str, nn.Module] | None:
    """The layer inside `head` that produces the logits: itself, or its last Linear/conv."""
    if isinstance(head, _OUTPUT_LAYERS):
        return "", head
    found = [(n, m) for n, m in head.named_modules() if isinstance(m, _OUTPUT_LAYERS)]
    return found[-1] if found else None


def reset_head(model: nn.Module, num_classes: int, head: str | None = None) -> nn.Module:
    """Give `model` a new, untrained head with `num_classes` outputs; returns the new head module.

    ``num_classes=0`` replaces the head with ``nn.Identity`` so the model returns the
    pooled features the head used to read. The new layer takes the old one's device and
    dtype and is trainable; the model's card is updated (``num_classes``, and
    ``num_features`` when it was unknown).
    """
    if checked_num_classes(num_classes) is None:
        raise InvalidArgumentError("reset_head needs num_classes: the number of classes, or 0 for no head")
    card = card_of(model)
    path, old = get_head(model, head)
    found = output_layer(old)
    num_features = getattr(model, "num_features", None)  # the built width (timm's convention) beats the card's
    if not isinstance(num_features, int) or isinstance(num_features, bool):
        num_features = card.num_features
    if found is not None:
        num_features = _in_features(found[1])
    new: nn.Module
    if num_classes == 0:
        new = nn.Identity()
        model.set_submodule(path, new)
        companions = _remove_companions(model, head_companions(card))
        built = getattr(model, "num_features", None)
        if companions and isinstance(built, int):
            num_features = built  # what the companions read: the built width
        extra = {k: v for k, v in card.extra.items() if k != HEAD_COMPANIONS}
        attach_card(model, dataclasses.replace(card, num_classes=0, num_features=num_features, extra=extra))
        return new
    if found is not None:
        inner_path, layer = found
        replacement = _like(layer, num_classes)
        if inner_path:
            old.set_submodule(inner_path, replacement)
            new = old
        else:
            model.set_submodule(path, replacement)
            new = replacement
    else:
        if num_features is None:
            raise ZooError(f"model {card.name!r}: the head {path!r} ({type(old).__name__}) has no Linear layer "
                           "and the card gives no num_features; set num_features in the card")
        param = next(model.parameters(), None)
        new = nn.Linear(num_features, num_classes, device=param.device if param is not None else None,
                        dtype=param.dtype if param is not None else None)
        model.set_submodule(path, new)
    attach_card(model, dataclasses.replace(card, num_classes=num_classes, num_features=num_features))
    return new


def _remove_companions(model: nn.Module, companions: list[str]) -> list[str]:
    """Each companion module made ``nn.Identity``; returns those replaced."""
    modules = dict(model.named_modules())
    removed = [path for path in companions if path in modules]
    for path in removed:
        model.set_submodule(path, nn.Identity())
    return removed


def _in_features(layer: nn.Module) -> int:
    return int(layer.in_features if isinstance(layer, nn.Linear) else layer.in_channels)  # type: ignore[arg-type]


def _like(layer: nn.Module, out: int) -> nn.Module:
    """A fresh layer shaped like `layer` but with `out` outputs, on its device and dtype."""
    factory = {"device": layer.weight.device, "dtype": layer.weight.dtype}
    bias = layer.bias is not None
    if isinstance(layer, nn.Linear):
        return nn.Linear(layer.in_features, out, bias=bias, **factory)
    return type(layer)(layer.in_channels, out, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                       dilation=layer.dilation, groups=1, bias=bias, **factory)


def head_parameters(model: nn.Module) -> list[torch.nn.Parameter]:
    """Parameters of the head (empty after ``reset_head(model, 0)``)."""
    return list(get_head(model)[1].parameters())
