"""A card's builder: imported only once the trust rule allows it, checked against its keywords, called.

Nothing here imports torch; the builder's own module does, when it is imported.
"""
from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._imports import import_object
from .cards import ARCHITECTURE_OPTIONS, ModelCard
from .errors import InvalidArgumentError, PluginError
from .trust import check_registered

CREATE_OPTIONS = ("pretrained", "num_classes", "freeze", "freeze_bn", "features_only", "out_indices", "drop_rate",
                  "drop_path_rate", "global_pool", "in_chans", "img_size", "checkpoint_path", "device", "dtype")


def import_builder(card: ModelCard) -> Callable[..., Any]:
    """Import the builder a card names, once an installed plugin is known to register it.

    An import failure names the card's plugin; a missing third-party module names what to install.
    """
    check_registered(card.builder, what=f"the card of model {card.name!r}")
    try:
        builder: Callable[..., Any] = import_object(card.builder)
    except ModuleNotFoundError as exc:
        raise _missing_module(card, exc) or PluginError(
            f"cannot import builder {card.builder!r} of model {card.name!r}: {exc}") from exc
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


def names_keyword(fn: Callable[..., Any], name: str) -> bool:
    """Whether `fn` names keyword `name` in its signature (``**kwargs`` does not count)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params and params[name].kind in (inspect.Parameter.KEYWORD_ONLY,
                                                    inspect.Parameter.POSITIONAL_OR_KEYWORD)


def check_kwargs(card: ModelCard, builder: Callable[..., Any], kwargs: Mapping[str, Any]) -> None:
    """Reject keywords a builder does not name (builders with ``**kwargs`` are checked when called)."""
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        return
    if _takes_var_keywords(builder):
        return
    unknown = sorted(set(kwargs) - set(params))
    if unknown:
        raise _not_taken(card, builder, unknown)


def known_keywords(builder: Callable[..., Any], card: ModelCard | None = None) -> list[str]:
    """The keywords `zoo.create` takes for a builder: zoo's own options, then the builder's.

    With a `card`, zoo's architecture options are those the card maps (`ModelCard.create_options`).
    For a builder taking ``**kwargs`` (torchvision's) these include the keywords with defaults of
    the model class its return annotation names, where it passes them on.
    """
    known = [option for option in CREATE_OPTIONS
             if card is None or option not in ARCHITECTURE_OPTIONS or option in card.create_options]
    for fn in (builder, _model_class(builder)):
        known += [name for name in _keywords(fn) if name not in known]
    return known


def _keywords(fn: Callable[..., Any] | None) -> list[str]:
    """Keywords `fn` takes by name (for a class: those of ``__init__`` with a default)."""
    try:
        params = inspect.signature(fn).parameters if fn is not None else {}
    except (TypeError, ValueError):
        return []
    named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [name for name, p in params.items()
            if p.kind in named and not (isinstance(fn, type) and p.default is p.empty)]


def _takes_var_keywords(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD for p in params.values())


def _model_class(builder: Callable[..., Any]) -> type | None:
    """The class a ``**kwargs`` builder says it returns, when its return annotation names one."""
    if not _takes_var_keywords(builder):
        return None
    try:
        returned = typing.get_type_hints(builder).get("return")
    except Exception:  # noqa: BLE001 - annotations that do not evaluate only cost the hint
        return None
    return returned if isinstance(returned, type) else None


def _not_taken(card: ModelCard, builder: Callable[..., Any], unknown: list[str]) -> InvalidArgumentError:
    return InvalidArgumentError(f"model {card.name!r} does not take {', '.join(map(repr, unknown))}; "
                                f"it takes {', '.join(known_keywords(builder, card))}")


_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def call_builder(card: ModelCard, builder: Callable[..., Any], kwargs: Mapping[str, Any]) -> Any:
    """Call a builder: a keyword it rejects gets zoo's message listing what it takes; a missing
    third-party module says what to install."""
    try:
        return builder(**kwargs)
    except TypeError as exc:
        found = _UNEXPECTED.search(str(exc))
        if found is None or found.group(1) not in kwargs:
            raise
        raise _not_taken(card, builder, [found.group(1)]) from exc
    except ModuleNotFoundError as exc:
        missing = _missing_module(card, exc)
        if missing is None:
            raise
        raise missing from exc


def _missing_module(card: ModelCard, exc: ModuleNotFoundError) -> PluginError | None:
    """The error for a model whose code needs a module that is not installed; None for the plugin's own modules."""
    top = (exc.name or "").partition(".")[0]
    if not top or top == card.builder.partition(".")[0].partition(":")[0]:
        return None
    return PluginError(f"model {card.name!r} needs the Python package {top!r}, which is not installed; "
                       f"install it (pip install {top}) and try again")


@dataclass(frozen=True)
class BuildPlan:
    """What a source of models knows about one model; `zoo.factory.assemble` does the rest.

    A source (a registered name with its weights, a saved folder, a Hub checkpoint) produces the
    card to attach (its `defaults` are the builder's keywords), the weights to load or None, and
    whether the head's keys may be missing or of another shape. `saved_head` is the class count
    the head had when the model was saved (0: removed), replayed before loading; `location` is
    recorded as the card's ``extra["weights_location"]``. `key_map` (a card's ``"package.module:function"``)
    is applied to `state` when the state's own keys fit the built model less well (a ``checkpoint_path``
    file in its weights' original layout).
    """

    card: ModelCard
    state: Mapping[str, Any] | None = None
    head_optional: bool = False
    saved_head: int | None = None
    where: str = ""
    location: str | None = None
    key_map: str | None = None

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.card.defaults)
