"""`zoo.create`: name -> card -> builder -> weights -> head -> freezing.

torch and the plugin's model code are imported here, inside the functions, so that
`import zoo` and listing stay free of them.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ._imports import import_object
from .cards import CARD_ATTRIBUTE, ModelCard, attach_card, card_of
from .names import SAVED_PREFIXES
from .errors import InvalidArgumentError, PluginError, ZooError
from .registry import Resolved, default_registry
from .trust import check_registered

__all__ = ["CARD_ATTRIBUTE", "attach_card", "build", "card_of", "create"]  # card helpers kept here for old imports

if TYPE_CHECKING:
    import torch

MAX_CLASSES = 1_000_000
MAX_IMAGE_SIDE = 16_384
IMAGE_SIZE_KEYS = ("image_size", "img_size", "input_size")


def create(
    name: str,
    *,
    pretrained: bool | None = None,
    num_classes: int | None = None,
    freeze: Any = None,
    **kwargs: Any,
) -> "torch.nn.Module":
    """Build a registered model.

    Args:
        name: a registered name or alias, ``name.tag`` for one set of weights, a recipe,
            ``hf-hub:org/repo`` or ``local-dir:PATH`` for a saved model.
        pretrained: load the default (or tagged) weights. Defaults to False, or to what
            a recipe says.
        num_classes: outputs of a new head; ``0`` removes the head and returns pooled
            features. With weights of another class count, only the head is left untrained.
        freeze: what to freeze, as in `zoo.finetune.freeze` (``"backbone"``, an integer
            over layer groups, or name patterns).
        **kwargs: keyword arguments of the model's builder; unknown ones are an error.

    The returned module carries its card as ``module.zoo_card``.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"a model name is a string such as 'resnet50' or 'local-dir:PATH', got {name!r}")
    checked_pretrained(pretrained)
    checked_num_classes(num_classes)
    if name.startswith(SAVED_PREFIXES):
        from .weights import create_saved

        return create_saved(name, pretrained=pretrained, num_classes=num_classes, freeze=freeze, **kwargs)
    resolved = default_registry().resolve(name)
    return build(resolved, pretrained=pretrained, num_classes=num_classes, freeze=freeze, **kwargs)


def build(
    resolved: Resolved,
    *,
    pretrained: bool | None = None,
    num_classes: int | None = None,
    freeze: Any = None,
    **kwargs: Any,
) -> "torch.nn.Module":
    """Build the model a `Resolved` names (the part of `create` after the lookup)."""
    card = resolved.card
    given = {"pretrained": pretrained, "num_classes": num_classes, "freeze": freeze}
    options = {**resolved.options, **{k: v for k, v in given.items() if v is not None}, **kwargs}
    missing = [key for key in resolved.required if options.get(key) is None]
    if missing:
        example = ", ".join(f"{key}=..." for key in missing)
        raise InvalidArgumentError(f"{card.name!r} needs {', '.join(missing)}: zoo.create({card.name!r}, {example})")
    pretrained = bool(checked_pretrained(options.pop("pretrained", False)))
    num_classes = checked_num_classes(options.pop("num_classes", None))
    freeze = options.pop("freeze", None)
    freeze_bn = options.pop("freeze_bn", "frozen")
    check_input_sizes(options)

    tag = None
    if pretrained:
        tag = resolved.tag or card.default_weights
        if tag is None:
            raise ZooError(f"model {card.name!r} has no pretrained weights; use pretrained=False, "
                           f"or see `zoo list --pretrained` for models that have them")
    builder = import_builder(card)
    builder_kwargs = {**card.defaults, **options}
    check_kwargs(card, builder, builder_kwargs)

    if tag is not None:
        from .weights import build_pretrained

        model = build_pretrained(builder, builder_kwargs, card, tag, num_classes=num_classes)
        card = getattr(model, CARD_ATTRIBUTE, card)  # carries extra["weights_location"]
    else:
        if num_classes and accepts(builder, "num_classes"):
            builder_kwargs["num_classes"] = num_classes
        model = call_builder(card, builder, builder_kwargs)

    built_classes = builder_kwargs.get("num_classes", card.class_count(tag))
    card = dataclasses.replace(card, defaults=builder_kwargs, default_weights=tag, num_classes=built_classes)
    attach_card(model, card)
    if num_classes is not None and num_classes != built_classes:
        from .finetune.heads import reset_head

        reset_head(model, num_classes)
    if freeze is not None:
        from .finetune.freezing import freeze as freeze_model

        freeze_model(model, freeze, bn=freeze_bn)
    return model


def checked_pretrained(value: Any) -> bool | None:
    """`pretrained` is True, False or None (the card's or recipe's choice); anything else is an error."""
    if value is not None and not isinstance(value, bool):
        raise InvalidArgumentError(f"pretrained must be True or False, got {value!r}")
    return value


def checked_num_classes(value: Any) -> int | None:
    """`num_classes` is None or an integer from 0 (no head) to `MAX_CLASSES`."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_CLASSES:
        raise InvalidArgumentError(f"num_classes must be an integer from 0 to {MAX_CLASSES:,}, got {value!r}")
    return value


def check_input_sizes(options: Mapping[str, Any]) -> None:
    """Refuse image sizes no model is built for (they only exhaust memory): at most `MAX_IMAGE_SIDE` pixels."""
    for key in IMAGE_SIZE_KEYS:
        value = options.get(key)
        sides = value if isinstance(value, (tuple, list)) else (value,)
        if any(isinstance(side, int) and not 0 < side <= MAX_IMAGE_SIDE for side in sides):
            raise InvalidArgumentError(f"{key} must be from 1 to {MAX_IMAGE_SIDE} pixels a side, got {value!r}")


def import_builder(card: ModelCard) -> Callable[..., Any]:
    """Import the builder a card names, once an installed plugin is known to register it.

    An import failure names the card's plugin.
    """
    check_registered(card.builder, what=f"the card of model {card.name!r}")
    try:
        return import_object(card.builder)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot import builder {card.builder!r} of model {card.name!r}: {exc}") from exc


def accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether `fn` takes keyword `name`, explicitly or through ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def check_kwargs(card: ModelCard, builder: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """Reject keywords a builder does not name (builders with ``**kwargs`` are checked when called)."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        known = ["pretrained", "num_classes", "freeze", "freeze_bn"]
        known += sorted(n for n, p in params.items()
                        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in known)
        raise InvalidArgumentError(
            f"model {card.name!r} does not take {', '.join(map(repr, unknown))}; it takes {', '.join(known)}"
        )


def call_builder(card: ModelCard, builder: Callable[..., Any], kwargs: dict[str, Any]) -> "torch.nn.Module":
    """Call a builder, turning "unexpected keyword" TypeErrors into a clear zoo error."""
    try:
        return builder(**kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc) or "got an unexpected" in str(exc):
            raise InvalidArgumentError(f"model {card.name!r} rejected its arguments: {exc}") from exc
        raise
