"""`zoo.create`'s create-time options: which ones a model takes, and their values checked (no torch).

Architecture options (`zoo.cards.ARCHITECTURE_OPTIONS`) are card data: ``ModelCard.create_options`` maps each
option a model honours to a spec (JSON values):

- ``{"keyword": K}``: the builder takes the option as keyword ``K``. For ``in_chans`` a ``"weight"`` names the
  state-dict key of the first conv's weight, adapted before loading; for ``img_size`` a ``"position_embedding"``
  key, its ``"prefix_tokens"`` (class token: 1) and ``"patch_size"`` let zoo resample pretrained position
  embeddings. For ``global_pool`` the builder takes zoo's values (`POOL_TYPES`).
- ``{"modules": [P, ...]}`` (``drop_rate``, ``drop_path_rate``): module paths (shell wildcards allowed) whose
  ``p`` zoo sets after the build. ``drop_rate`` sets them all; ``drop_path_rate`` rises linearly from 0 to the
  rate over the matched modules in model order (stochastic depth's usual schedule).
- ``{"module": M}``: for ``global_pool`` the pooling module zoo replaces by its own, for ``in_chans`` the first
  convolution zoo replaces by one taking ``in_chans`` channels (weights adapted).

A ``global_pool`` spec may add ``"values"``: the subset of `POOL_TYPES` the model honours. An option a card
does not list is refused, naming what the model takes; the universal options (`UNIVERSAL_OPTIONS`) need no
card data. `zoo.model_options` does what the options say to the built model and its weights.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .arguments import MAX_IMAGE_SIDE
from .cards import ARCHITECTURE_OPTIONS, ModelCard
from .errors import CardError, InvalidArgumentError

__all__ = ["APPLIED_OPTIONS", "MAX_IN_CHANS", "POOL_TYPES", "UNIVERSAL_OPTIONS", "CreateOptions", "checked_spec",
           "supported", "take_options"]

UNIVERSAL_OPTIONS = ("checkpoint_path", "device", "dtype")
"""Options every model takes: weights from a local file, and where and in which precision the model lives."""

POOL_TYPES = ("avg", "max", "avgmax", "")
"""``global_pool`` values: average, maximum, the mean of both, or ``""``: no pooling (the unpooled feature map)."""

MAX_IN_CHANS = 1024

APPLIED_OPTIONS = "applied_options"
"""The card ``extra`` key recording the options zoo applied to modules after the build (``{"in_chans": 1}``),
so that a saved model is rebuilt the same way."""

_KEYWORD_EXTRAS: dict[str, dict[str, type]] = {"in_chans": {"weight": str},
                   "img_size": {"position_embedding": str, "prefix_tokens": int, "patch_size": int},
                   "global_pool": {"values": list}}
_MODULE_FORMS = {"drop_rate": "modules", "drop_path_rate": "modules", "global_pool": "module", "in_chans": "module"}


def supported(card: ModelCard) -> tuple[str, ...]:
    """The create-time options `card`'s model takes: its architecture options, then the universal ones."""
    return tuple(o for o in ARCHITECTURE_OPTIONS if o in card.create_options) + UNIVERSAL_OPTIONS


@dataclass(frozen=True)
class CreateOptions:
    """The create-time options of one `zoo.create` call, checked against the model's card.

    `values` holds the architecture options given (option -> value), `specs` their card specs; the universal
    options are kept apart (`device` and `dtype` as given; `zoo.model_options` turns them into torch's).
    """

    card_name: str
    values: Mapping[str, Any] = field(default_factory=dict)
    specs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    checkpoint_path: Path | None = None
    device: Any = None
    dtype: Any = None

    def builder_keywords(self) -> dict[str, Any]:
        """The builder keywords the keyword-mapped options become."""
        return {self.specs[o]["keyword"]: v for o, v in self.values.items() if "keyword" in self.specs[o]}

    def module_values(self) -> dict[str, Any]:
        """The options zoo applies to modules after the build (option -> value)."""
        return {o: v for o, v in self.values.items() if "keyword" not in self.specs[o]}

    @property
    def placed(self) -> bool:
        """Whether a device or dtype was asked for."""
        return self.device is not None or self.dtype is not None


def take_options(card: ModelCard, kwargs: dict[str, Any], *,
                 builder_takes: Callable[[str], bool] = lambda name: False,
                 replayed: Mapping[str, Any] | None = None) -> CreateOptions:
    """Remove zoo's create-time options from `kwargs` and check them against `card`.

    An architecture option the card does not map stays in `kwargs` when `builder_takes` it by name (a
    plugin's own keyword, passed on as before); otherwise it is refused, listing what the model takes.
    `replayed` are options a saved model was built with (`APPLIED_OPTIONS`); the caller's win.
    """
    values: dict[str, Any] = dict(replayed or {})
    specs = {option: checked_spec(card, option) for option in card.create_options}  # a plugin bug shows at once
    for option in ARCHITECTURE_OPTIONS:
        if option not in kwargs:
            continue
        if option not in card.create_options and builder_takes(option):
            continue
        value = kwargs.pop(option)
        if option not in card.create_options:
            raise InvalidArgumentError(
                f"model {card.name!r} does not take {option}={value!r}; its create-time options are: "
                f"{', '.join(supported(card))} (zoo.get_card({card.name!r}).create_options says how each maps)")
        values[option] = value
    for option in list(values):
        if values[option] is None:
            del values[option]
            continue
        if option not in specs:
            raise InvalidArgumentError(f"model {card.name!r} was saved with {option}={values[option]!r}, which "
                                       "its card no longer maps; its create-time options are: "
                                       f"{', '.join(supported(card))}")
        values[option] = _checked_value(card, option, values[option], specs[option])
    universal = {o: kwargs.pop(o) for o in UNIVERSAL_OPTIONS if o in kwargs}
    return CreateOptions(card.name, values, specs, _checked_path(universal.get("checkpoint_path")),
                         universal.get("device"), universal.get("dtype"))


# ---------------------------------------------------------------------------- card specs (plugin errors)


def checked_spec(card: ModelCard, option: str) -> Mapping[str, Any]:
    """The card's spec for `option`, checked; a malformed one is a `CardError` naming the card (a plugin bug)."""
    spec = card.create_options.get(option)
    if spec is None:
        raise InvalidArgumentError(f"model {card.name!r} does not take {option}; its create-time options are: "
                                   f"{', '.join(supported(card))}")
    forms = [key for key in ("keyword", "modules", "module") if key in spec]
    allowed = ["keyword"] + ([_MODULE_FORMS[option]] if option in _MODULE_FORMS else [])
    if len(forms) != 1 or forms[0] not in allowed:
        raise _bad_spec(card, option, spec, f"needs exactly one of {' or '.join(repr(a) for a in allowed)}")
    form = forms[0]
    extras: dict[str, type] = _KEYWORD_EXTRAS.get(option, {}) if form == "keyword" else (
        {"values": list} if option == "global_pool" else {})
    unknown = sorted(set(spec) - {form, *extras})
    if unknown:
        raise _bad_spec(card, option, spec, f"has unknown key(s) {unknown}; known: {[form, *extras]}")
    value = spec[form]
    if form == "modules":
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v for v in value):
            raise _bad_spec(card, option, spec, "'modules' must be a non-empty list of module paths")
    elif not isinstance(value, str) or not value:
        raise _bad_spec(card, option, spec, f"{form!r} must be a non-empty string")
    for key, kind in extras.items():
        if key in spec and (not isinstance(spec[key], kind) or isinstance(spec[key], bool)):
            raise _bad_spec(card, option, spec, f"{key!r} must be a {kind.__name__}")
    if "values" in spec and (not spec["values"] or any(v not in POOL_TYPES for v in spec["values"])):
        raise _bad_spec(card, option, spec, f"'values' must be a non-empty subset of {list(POOL_TYPES)}")
    if "position_embedding" in spec and spec.get("patch_size", 0) <= 0:
        raise _bad_spec(card, option, spec, "a 'position_embedding' needs a positive 'patch_size'")
    if spec.get("prefix_tokens", 0) < 0:
        raise _bad_spec(card, option, spec, "'prefix_tokens' must be 0 or more")
    return spec


def _bad_spec(card: ModelCard, option: str, spec: Any, problem: str) -> CardError:
    return CardError(f"the card of model {card.name!r}: create_options[{option!r}] = {dict(spec)!r} {problem}. "
                     "This is a bug in the plugin that registered it; see docs/vision.md, 'Create-time options'",
                     field="create_options")


# ---------------------------------------------------------------------------- values (user errors)


def _checked_value(card: ModelCard, option: str, value: Any, spec: Mapping[str, Any]) -> Any:
    if option in ("drop_rate", "drop_path_rate"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InvalidArgumentError(f"model {card.name!r}: {option} is a probability, a number from 0 to below "
                                       f"1 (0.1 is usual), got {value!r}")
        return float(value)
    if option == "global_pool":
        accepted = [v for v in POOL_TYPES if v in spec.get("values", POOL_TYPES)]
        if value not in accepted:
            raise InvalidArgumentError(f"model {card.name!r}: global_pool={value!r} is not one it takes; accepted: "
                                       f"{', '.join(map(repr, accepted))}")
        return value
    if option == "in_chans":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_IN_CHANS:
            raise InvalidArgumentError(f"model {card.name!r}: in_chans is the number of input channels, an integer "
                                       f"from 1 to {MAX_IN_CHANS} (1: grey, 3: RGB), got {value!r}")
        return value
    return _checked_img_size(card, value, spec)


def _checked_img_size(card: ModelCard, value: Any, spec: Mapping[str, Any]) -> Any:
    sides: Sequence[Any] = value if isinstance(value, (list, tuple)) else (value,)
    if len(sides) not in (1, 2) or not all(isinstance(s, int) and not isinstance(s, bool)
                                           and 0 < s <= MAX_IMAGE_SIDE for s in sides):
        raise InvalidArgumentError(f"model {card.name!r}: img_size is the input side in pixels, an integer from 1 "
                                   f"to {MAX_IMAGE_SIDE} (or a (height, width) pair), got {value!r}")
    patch = spec.get("patch_size")
    if patch and any(s % patch for s in sides):
        raise InvalidArgumentError(f"model {card.name!r}: img_size={value!r} must be a multiple of its patch size "
                                   f"{patch} (e.g. {max(patch, sides[0] // patch * patch)})")
    return tuple(sides) if isinstance(value, (list, tuple)) else value


def _checked_path(value: Any) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise InvalidArgumentError(f"checkpoint_path is the path of a local weights file (.safetensors) or of a "
                                   f"folder saved by zoo.save_pretrained, got {value!r}")
    return Path(value).expanduser()
