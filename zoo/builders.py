"""A card's builder: imported only once the trust rule allows it, checked against its keywords, called.

Nothing here imports torch; the builder's own module does, when it is imported.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._imports import import_object
from .cards import ModelCard
from .errors import InvalidArgumentError, PluginError
from .trust import check_registered

CREATE_OPTIONS = ("pretrained", "num_classes", "freeze", "freeze_bn")


def import_builder(card: ModelCard) -> Callable[..., Any]:
    """Import the builder a card names, once an installed plugin is known to register it.

    An import failure names the card's plugin.
    """
    check_registered(card.builder, what=f"the card of model {card.name!r}")
    try:
        builder: Callable[..., Any] = import_object(card.builder)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"cannot import builder {card.builder!r} of model {card.name!r}: {exc}") from exc
    return builder


def accepts(fn: Callable[..., Any], name: str) -> bool:
    """Whether `fn` takes keyword `name`, explicitly or through ``**kwargs``."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return True
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def check_kwargs(card: ModelCard, builder: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Reject keywords a builder does not name (builders with ``**kwargs`` are checked when called)."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        known = list(CREATE_OPTIONS)
        known += sorted(n for n, p in params.items()
                        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n not in known)
        raise InvalidArgumentError(
            f"model {card.name!r} does not take {', '.join(map(repr, unknown))}; it takes {', '.join(known)}"
        )


def call_builder(card: ModelCard, builder: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Call a builder, turning "unexpected keyword" TypeErrors into a clear zoo error."""
    try:
        return builder(**kwargs)
    except TypeError as exc:
        if "unexpected keyword argument" in str(exc) or "got an unexpected" in str(exc):
            raise InvalidArgumentError(f"model {card.name!r} rejected its arguments: {exc}") from exc
        raise


@dataclass(frozen=True)
class BuildPlan:
    """What a source of models knows about one model; `zoo.factory.assemble` does the rest.

    A source (a registered name with its weights, a saved folder, a Hub checkpoint) produces the
    card to attach (its `defaults` are the builder's keywords), the weights to load or None, and
    whether the head's keys may be missing or of another shape. `saved_head` is the class count
    the head had when the model was saved (0: removed), replayed before loading; `location` is
    recorded as the card's ``extra["weights_location"]``.
    """

    card: ModelCard
    state: Mapping[str, Any] | None = None
    head_optional: bool = False
    saved_head: int | None = None
    where: str = ""
    location: str | None = None

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.card.defaults)
