"""Callbacks: hooks into a training run, with state that a checkpoint keeps.

A callback is any object with some of the hook methods (`HOOKS`); subclassing `Callback` is
optional. A callback with ``state_dict()`` and ``load_state_dict(state)`` has that state saved in
every checkpoint and given back on resume, so a stateful callback (a step counter, an early-stop
patience) continues exactly where the stopped run left it. The state must be tensors and plain
data (dicts, lists, strings, numbers), as checkpoints are read with ``torch.load(weights_only=True)``.

An ``on_*`` method that matches no hook (``on_epoch_begin``, ``on_train_end``) would never run: it
is reported with a `UserWarning` when the trainer is configured. The built-in `BestModel` tracker is
a callback like any other: the trainer puts it first.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch

from .checkpoint import CheckpointError
from .monitoring import DEFAULT_MONITORS, Monitor, improves

if TYPE_CHECKING:
    from .trainer import FitResult, Trainer

HOOKS = ("on_fit_start", "on_epoch_start", "on_step_end", "on_epoch_end", "on_fit_end")
MONITORS = DEFAULT_MONITORS  # what BestModel watches by default, first present wins
_PLAIN = (str, int, float, bool, type(None))


class Callback:
    """Hooks into a run; override what you need. ``trainer.request_stop()`` ends a run cleanly
    (a checkpoint is written, and ``resume=True`` continues from it).

    Override `state_dict` and `load_state_dict` when the callback keeps state a resumed run
    needs; `state_key` tells apart two callbacks of one class (default: the class name).
    """

    def on_fit_start(self, trainer: Trainer) -> None: ...
    def on_epoch_start(self, trainer: Trainer, epoch: int) -> None: ...
    def on_step_end(self, trainer: Trainer, step: int, loss: torch.Tensor) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None: ...

    @property
    def state_key(self) -> str:
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to continue exactly (tensors and plain data only)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Take back what `state_dict` returned in the run being resumed."""


class BestModel(Callback):
    """The monitored metric's best value so far. When it improves, the trainer saves the model as the best one.

    The metric is `monitor` (any epoch metric, better higher or lower as `mode` says, by default as
    its name says: `zoo.finetune.monitoring.default_mode`); without one, validation accuracy, else
    validation loss, else training loss.
    """

    def __init__(self, monitor: str | None = None, mode: str | None = None) -> None:
        self.watch = Monitor(monitor, mode)
        self.monitor: str | None = None
        self.value: float | None = None
        self.epoch: int | None = None

    def update(self, metrics: Mapping[str, Any]) -> bool:
        """Record `metrics` (one epoch's); True when they are the best so far."""
        read = self.watch.read(metrics)
        if read is None:
            return False
        monitor, value, higher = read
        if improves(value, self.value, higher):
            self.monitor, self.value, self.epoch = monitor, value, metrics["epoch"]
            return True
        return False

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        if self.update(metrics):
            trainer.save_best(metrics)

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "value": self.value, "epoch": self.epoch}

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        if state:
            self.monitor, self.value, self.epoch = state["monitor"], state["value"], state["epoch"]


def unknown_hooks(callback: object) -> list[str]:
    """The ``on_*`` methods of `callback` that match no hook, so would never be called."""
    return sorted(name for name in dir(callback)
                  if name.startswith("on_") and name not in HOOKS and callable(getattr(callback, name, None)))


def warn_unknown_hooks(callbacks: Iterable[object]) -> None:
    """One `UserWarning` for each ``on_*`` method that matches no hook, naming the hooks there are."""
    for callback in callbacks:
        for name in unknown_hooks(callback):
            warnings.warn(f"callback {type(callback).__qualname__} has a method {name}() that matches no hook, so it "
                          f"never runs; the hooks are {', '.join(HOOKS)}", UserWarning, stacklevel=2)


class Hooks:
    """Calls one hook on every callback in order.

    Only methods a callback really implements are called: `Callback`'s empty defaults are
    skipped, so a step costs nothing for callbacks that do not watch steps.
    """

    def __init__(self, callbacks: Sequence[object]) -> None:
        self._methods = {hook: [method for callback in callbacks
                                if (method := _implemented(callback, hook)) is not None] for hook in HOOKS}

    def call(self, hook: str, *args: Any) -> None:
        for method in self._methods[hook]:
            method(*args)


def callback_states(callbacks: Sequence[object]) -> dict[str, Any]:
    """``{state_key: state}`` of every callback with a ``state_dict``, checked to load with ``weights_only``."""
    states = {}
    for key, callback in zip(_state_keys(callbacks), callbacks):
        method = getattr(callback, "state_dict", None)
        if callable(method):
            state = method()
            _check_plain(state, f"callback {key}")
            states[key] = state
    return states


def load_callback_states(callbacks: Sequence[object], states: Mapping[str, Any]) -> None:
    """Give each callback its state from a checkpoint (one the checkpoint has nothing for starts afresh)."""
    for key, callback in zip(_state_keys(callbacks), callbacks):
        method = getattr(callback, "load_state_dict", None)
        if key in states and callable(method):
            method(states[key])


def _implemented(callback: object, hook: str) -> Any:
    """`callback`'s `hook` method, or None when it has none or only `Callback`'s empty default."""
    method = getattr(callback, hook, None)
    inherited = getattr(type(callback), hook, None) is getattr(Callback, hook)
    inherited = inherited and hook not in getattr(callback, "__dict__", {})
    return None if method is None or inherited else method


def _state_keys(callbacks: Sequence[object]) -> list[str]:
    """Each callback's `state_key`; the second of one key is ``key#2``, and so on."""
    keys: list[str] = []
    for callback in callbacks:
        key = str(getattr(callback, "state_key", type(callback).__qualname__))
        count = sum(1 for k in keys if k == key or k.startswith(f"{key}#"))
        keys.append(f"{key}#{count + 1}" if count else key)
    return keys


def _check_plain(value: Any, owner: str, where: str = "") -> None:
    """Refuse state a ``weights_only`` load would reject, naming where in it the bad value sits."""
    if isinstance(value, (*_PLAIN, torch.Tensor)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_plain(key, owner, where)
            _check_plain(item, owner, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_plain(item, owner, f"{where}[{index}]")
        return
    raise CheckpointError(f"{owner}: state_dict() holds a {type(value).__name__} at state{where}; a checkpoint takes "
                          "tensors, dicts, lists, tuples, strings, numbers and None (convert it, e.g. a set to a "
                          "sorted list)")
