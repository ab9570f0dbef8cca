"""Checks of `zoo.create`'s arguments that every source of models shares (registry, saved folders, Hub)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import InvalidArgumentError

MAX_CLASSES = 1_000_000
MAX_IMAGE_SIDE = 16_384
IMAGE_SIZE_KEYS = ("image_size", "img_size", "input_size")


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
