"""Building a module and putting weights into it, fast and lean.

The fast path builds the module with its parameters on the ``meta`` device (no memory, no
random initialisation), then assigns the tensors of a memory-mapped file in their place:
creation costs about one read of the file. Buffers are built for real (they are small, and
non-persistent ones are not in any file). A module that cannot be built on meta, or whose
left-over parameters cannot be initialised, is built the ordinary way and loaded by copy.

Head rule: keys under the card's `head` may be dropped (class counts differ, or the weights
declare none) and the head keeps a fresh initialisation; so may those under the modules built fresh beside
it (``extra["head_companions"]``, `zoo.head_companions`). Every other key must match exactly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .._imports import import_object
from ..builders import call_builder
from ..cards import ModelCard
from ..errors import InvalidArgumentError, WeightsError
from ..head_companions import head_companions, within
from ..trust import check_registered
from .formats import StateDict

log = logging.getLogger(__name__)
_ON_META = threading.local()  # depth > 0 while this thread builds with parameters_on_meta
_HOOK_LOCK = threading.Lock()
_LIST_LIMIT = 12


# ---------------------------------------------------------------------------- building on meta


def _install_meta_hook() -> None:
    """Wrap `nn.Module.register_parameter` once; the wrapper acts only in a thread building on meta."""
    with _HOOK_LOCK:
        original = nn.Module.register_parameter
        if getattr(original, "zoo_meta_hook", False):
            return

        def register(self: nn.Module, name: str, param: nn.Parameter | None) -> None:
            if getattr(_ON_META, "depth", 0) and type(param) is nn.Parameter and param.device.type != "meta":
                param = nn.Parameter(param.to("meta"), requires_grad=param.requires_grad)
            original(self, name, param)

        register.zoo_meta_hook = True  # type: ignore[attr-defined]
        nn.Module.register_parameter = register  # type: ignore[method-assign]


@contextlib.contextmanager
def parameters_on_meta() -> Iterator[None]:
    """While active, every parameter a module registers in this thread is moved to the meta device.

    Initialisers then run on meta tensors (free); buffers stay real. Modules other threads
    build meanwhile are not affected: the hook stays installed and checks a thread-local depth.
    """
    _install_meta_hook()
    _ON_META.depth = getattr(_ON_META, "depth", 0) + 1
    try:
        yield
    finally:
        _ON_META.depth -= 1


def instantiate(card: ModelCard, builder: Callable[..., Any], kwargs: dict[str, Any], *,
                lean: bool = True) -> tuple[nn.Module, bool]:
    """Build the module, on meta if `lean` and possible. Returns (module, built_on_meta)."""
    if lean:
        try:
            with parameters_on_meta():
                return call_builder(card, builder, kwargs), True
        except InvalidArgumentError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure on meta means: build it for real
            log.debug("building %s on the meta device failed (%s); building it normally", card.name, exc)
    return call_builder(card, builder, kwargs), False


# ---------------------------------------------------------------------------- matching keys


@dataclasses.dataclass
class KeyReport:
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]
    dropped_head: list[str]


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - _LIST_LIMIT} more)" if len(keys) > _LIST_LIMIT else ""
    return ", ".join(keys[:_LIST_LIMIT]) + more


def _tied_groups(model: nn.Module) -> list[list[str]]:
    """Names that share one parameter object (tied weights), in state-dict order."""
    groups: dict[int, list[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        groups.setdefault(id(tensor), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def match_keys(model: nn.Module, state: Mapping[str, torch.Tensor], *, head: str | None,
               head_optional: bool, companions: Sequence[str] = ()) -> tuple[StateDict, KeyReport]:
    """Which tensors to load; what is missing, unexpected or of the wrong shape.

    With `head_optional`, keys under `head` or under one of its `companions` may be left out.
    """
    expected = model.state_dict(keep_vars=True)
    aliases = {name: group for group in _tied_groups(model) for name in group}
    optional = [*([head] if head is not None else []), *companions] if head_optional else []

    def in_head(key: str) -> bool:
        return within(key, optional)

    load: StateDict = {}
    report = KeyReport([], [], [], [])
    for key, tensor in state.items():
        target = expected.get(key)
        if target is None:
            (report.dropped_head if in_head(key) else report.unexpected).append(key)
        elif target.is_floating_point() and not tensor.is_floating_point():
            report.mismatched.append(f"{key} (file {tensor.dtype}, model {target.dtype}: not a float tensor)")
        elif tuple(target.shape) != tuple(tensor.shape):
            if in_head(key):
                report.dropped_head.append(key)
            else:
                report.mismatched.append(f"{key} (file {tuple(tensor.shape)}, model {tuple(target.shape)})")
        else:
            if target.dtype != tensor.dtype and target.is_floating_point() and tensor.is_floating_point():
                tensor = tensor.to(target.dtype)
            load[key] = tensor
    for key in expected:
        if key in load or in_head(key) or any(a in load for a in aliases.get(key, ())):
            continue
        report.missing.append(key)
    return load, report


def check_report(report: KeyReport, where: str) -> None:
    problems = []
    if report.missing:
        problems.append(f"missing keys: {_listed(report.missing)}")
    if report.unexpected:
        problems.append(f"unexpected keys: {_listed(report.unexpected)}")
    if report.mismatched:
        problems.append(f"shape mismatches: {_listed(report.mismatched)}")
    if problems:
        raise WeightsError(f"weights {where} do not fit the model; " + "; ".join(problems)
                           + ". Check the weights tag and builder arguments (or the card's key_map).")


# ---------------------------------------------------------------------------- loading


class _CannotMaterialize(Exception):
    pass


def _retie(model: nn.Module, groups: list[list[str]], loaded: Mapping[str, Any]) -> None:
    """After assignment, point every name of a tied group at the same parameter again."""
    for group in groups:
        source = next((n for n in group if n in loaded), None)
        if source is None:
            continue
        try:
            shared = model.get_parameter(source)
        except AttributeError:
            continue
        for name in group:
            if name != source:
                parent, _, leaf = name.rpartition(".")
                setattr(model.get_submodule(parent) if parent else model, leaf, shared)


def _materialize_leftovers(model: nn.Module, loaded: Mapping[str, Any]) -> list[str]:
    """Give real storage and a fresh init to parameters no file provided (a new head).

    A tensor that was in the file but is still on meta (a module whose own loading code
    ignores assignment) must not be re-initialised: that is a reason to fall back.
    """
    done = []
    for name, module in model.named_modules():
        meta = [n for n, p in module.named_parameters(recurse=False) if p.is_meta]
        meta += [n for n, b in module.named_buffers(recurse=False) if b is not None and b.is_meta]
        if not meta:
            continue
        full = [f"{name}.{n}" if name else n for n in meta]
        if any(k in loaded for k in full) or not callable(getattr(module, "reset_parameters", None)):
            raise _CannotMaterialize(f"{name or type(module).__name__}: {', '.join(meta)}")
        device = torch.get_default_device()  # the device a build is placed on (zoo.create(device=...)), else CPU
        for n, p in list(module.named_parameters(recurse=False)):
            if p.is_meta:
                setattr(module, n, nn.Parameter(torch.empty_like(p, device=device), requires_grad=p.requires_grad))
        for n, b in list(module.named_buffers(recurse=False)):
            if b is not None and b.is_meta:
                module.register_buffer(n, torch.empty_like(b, device=device),
                                       persistent=n not in module._non_persistent_buffers_set)
        module.reset_parameters()
        done += full
    return done


def load_into(model: nn.Module, state: Mapping[str, torch.Tensor], *, on_meta: bool, head: str | None,
              head_optional: bool, where: str, companions: Sequence[str] = ()) -> KeyReport:
    """Load `state` into `model` (strict except the head and its `companions` when `head_optional`);
    raises WeightsError."""
    groups = _tied_groups(model)
    load, report = match_keys(model, state, head=head, head_optional=head_optional, companions=companions)
    check_report(report, where)
    model.load_state_dict(load, strict=False, assign=on_meta)
    if on_meta:
        _retie(model, groups, load)
        _materialize_leftovers(model, load)
    if report.dropped_head:
        log.info("weights %s: head keys not loaded (%s)", where, _listed(report.dropped_head))
    return report


Adapt = Callable[[nn.Module, Mapping[str, torch.Tensor]], Mapping[str, torch.Tensor]]
"""Fits a state dict to the built module before it loads (shapes changed by create-time options, a key map
chosen by the module's keys, tensors moved to the module's device and dtype)."""


def build_and_load(card: ModelCard, builder: Callable[..., Any], kwargs: dict[str, Any],
                   state: Mapping[str, torch.Tensor], *, head_optional: bool, where: str,
                   prepare: Callable[[nn.Module], None] | None = None, lean: bool = True,
                   adapt: Adapt | None = None) -> nn.Module:
    """Build a module and load `state` into it; the lean path first, the ordinary path as fallback.

    `prepare` runs after building and before loading (for example to swap a head as it was saved);
    `adapt` then fits `state` to the built module.
    """
    companions = head_companions(card)
    model, on_meta = instantiate(card, builder, kwargs, lean=lean)
    if prepare is not None:
        prepare(model)
    fitted = adapt(model, state) if adapt is not None else state
    if not on_meta:
        load_into(model, fitted, on_meta=False, head=card.head, head_optional=head_optional, where=where,
                  companions=companions)
        return model
    try:
        load_into(model, fitted, on_meta=True, head=card.head, head_optional=head_optional, where=where,
                  companions=companions)
        return model
    except _CannotMaterialize as exc:
        log.debug("%s: cannot initialise %s after a meta build; building it normally", card.name, exc)
    model, _ = instantiate(card, builder, kwargs, lean=False)
    if prepare is not None:
        prepare(model)
    fitted = adapt(model, state) if adapt is not None else state
    load_into(model, fitted, on_meta=False, head=card.head, head_optional=head_optional, where=where,
              companions=companions)
    return model


def build_module(card: ModelCard, builder: Callable[..., Any], kwargs: dict[str, Any],
                 state: Mapping[str, torch.Tensor] | None, *, head_optional: bool, where: str,
                 prepare: Callable[[nn.Module], None] | None = None, adapt: Adapt | None = None) -> nn.Module:
    """Build a module, with `state` loaded when given; `prepare` runs between building and loading, then
    `adapt` fits the state to the built module."""
    if state is not None:
        return build_and_load(card, builder, kwargs, state, head_optional=head_optional, where=where,
                              prepare=prepare, adapt=adapt)
    model: nn.Module = call_builder(card, builder, kwargs)
    if prepare is not None:
        prepare(model)
    return model


def import_function(spec: str, what: str) -> Callable[..., Any]:
    """Import ``"package.module:function"``, once a registered card is known to name it."""
    check_registered(spec, what=what)
    try:
        function: Callable[..., Any] = import_object(spec)
    except (ImportError, AttributeError) as exc:
        raise WeightsError(f"cannot import {what} {spec!r}: {exc}") from exc
    return function


def apply_key_map(state: StateDict, spec: str | None, what: str) -> StateDict:
    if not spec:
        return state
    mapped = import_function(spec, f"key map of {what}")(state)
    if not isinstance(mapped, Mapping):
        raise WeightsError(f"key map {spec!r} of {what} returned {type(mapped).__name__}, not a mapping of tensors")
    return dict(mapped)
