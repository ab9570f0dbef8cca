"""Checks of option values shared by the trainer's configuration and the strategies.

Each raises `InvalidArgumentError` naming the option, what it must be and what it got, the way
card fields are checked: ``epochs="3"`` is refused with ``epochs must be a whole number of at
least 0, got '3'``, never a bare TypeError later in the run.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from typing import Any

from ..errors import InvalidArgumentError


def require(name: str, value: Any, ok: bool, what: str) -> None:
    """Refuse `value` for option `name` unless `ok`; `what` says what the option must be."""
    if not ok:
        raise InvalidArgumentError(f"{name} must be {what}, got {value!r}")


def is_int(value: Any) -> bool:
    """A whole number that is not a bool (``True`` is not an epoch count)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def whole_number(name: str, value: Any, minimum: int, *, optional: bool = False) -> None:
    """`value` is an integer of at least `minimum` (or None when `optional`)."""
    if optional and value is None:
        return
    what = f"a whole number of at least {minimum}"
    require(name, value, is_int(value) and value >= minimum, f"None or {what}" if optional else what)


def positive_number(name: str, value: Any, *, optional: bool = False) -> None:
    """`value` is a finite number above 0 (or None when `optional`)."""
    if optional and value is None:
        return
    what = "a positive finite number"
    require(name, value, is_real(value) and value > 0, f"None or {what}" if optional else what)


def non_negative_number(name: str, value: Any, *, optional: bool = False) -> None:
    """`value` is a finite number of at least 0 (or None when `optional`)."""
    if optional and value is None:
        return
    what = "a finite number of at least 0"
    require(name, value, is_real(value) and value >= 0, f"None or {what}" if optional else what)


def flag(name: str, value: Any, *, optional: bool = False) -> None:
    """`value` is True or False (or None when `optional`)."""
    if optional and value is None:
        return
    require(name, value, isinstance(value, bool), "None, True or False" if optional else "True or False")


def one_of(name: str, value: Any, choices: Collection[str], *, also: str = "") -> None:
    """`value` is one of the names in `choices`; `also` names what else the option takes."""
    if value not in choices:
        raise InvalidArgumentError(f"{name} must be one of {tuple(choices)}{also}, got {value!r}")
