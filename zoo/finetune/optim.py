"""The optimizer and the learning-rate schedule of a training run, built from its configuration.

Parameter groups cover every parameter, trainable now or not: a strategy that unfreezes layers
later only flips ``requires_grad``, and the optimizer picks them up. A zoo model with layer groups
on its card gets `zoo.finetune.param_groups`; any other module two groups, with and without
weight decay, by the same no-decay rule (`no_decay_names`).
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..cards import card_or_none
from .config import ParamGroups, TrainerConfig, is_scheduler
from .groups import no_decay_names, param_groups

ADAMW_WEIGHT_DECAY = 0.01  # AdamW's usual default; the other optimizers default to none


def weight_decay_of(config: TrainerConfig) -> float:
    """The configured weight decay, or the optimizer's default."""
    if config.weight_decay is not None:
        return float(config.weight_decay)
    return ADAMW_WEIGHT_DECAY if config.optimizer == "adamw" else 0.0


def parameter_groups(model: nn.Module, lr: float, weight_decay: float) -> ParamGroups:
    """Optimizer groups over every parameter of `model`, frozen ones included."""
    card = card_or_none(model)
    if card is not None and card.layer_groups:
        return param_groups(model, lr, weight_decay=weight_decay)
    skip = no_decay_names(model)
    decay = [p for name, p in model.named_parameters() if name not in skip]
    no_decay = [p for name, p in model.named_parameters() if name in skip]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


def build_optimizer(config: TrainerConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer `config.optimizer` names, over `parameter_groups`, or the one given."""
    spec = config.optimizer
    if isinstance(spec, torch.optim.Optimizer):
        return spec
    decay = weight_decay_of(config)
    groups = parameter_groups(model, config.lr, decay)
    if callable(spec):
        return spec(groups)
    if spec == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, weight_decay=decay)
    if spec == "adam":
        return torch.optim.Adam(groups, lr=config.lr, weight_decay=decay)
    return torch.optim.AdamW(groups, lr=config.lr, weight_decay=decay)


def optimizer_steps_per_epoch(batches: int, accumulate: int) -> int:
    """Optimizer steps in an epoch of `batches` batches: one per `accumulate` batches, and one for a remainder."""
    return -(-batches // accumulate)


def warmup_length(config: TrainerConfig, steps_per_epoch: int) -> int:
    """The warm-up in optimizer steps (``warmup_epochs`` rounded to whole steps; 0 without one)."""
    if config.warmup_steps is not None:
        return int(config.warmup_steps)
    if config.warmup_epochs is not None:
        return int(round(float(config.warmup_epochs) * steps_per_epoch))
    return 0


def build_scheduler(config: TrainerConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int) -> Any:
    """The per-optimizer-step schedule of the run, warm-up included (None for a constant rate without one).

    `steps_per_epoch` counts optimizer steps (`optimizer_steps_per_epoch`); the named schedules run
    over all of the run's steps after the warm-up.
    """
    spec = config.scheduler
    if not isinstance(spec, str) and spec is not None:
        if is_scheduler(spec) or not callable(spec):  # a scheduler object (the configuration allows no other)
            return spec
        return spec(optimizer)
    total = steps_per_epoch * max(config.epochs, 1)
    warmup = min(warmup_length(config, steps_per_epoch), total)
    if not warmup:
        return _named_schedule(spec, optimizer, total)
    base = [float(group["lr"]) for group in optimizer.param_groups]
    return Warmup(optimizer, warmup, base, _named_schedule(spec, optimizer, total - warmup))


def _named_schedule(spec: str | None, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    if spec is None or spec == "constant":
        return None
    total = max(total_steps, 1)
    if spec == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    if spec == "linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / total))
    peak = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=total + 1)


class Warmup:
    """A linear warm-up over the first `steps` optimizer steps, then `after` (a schedule, or None: constant).

    Step ``i`` of the warm-up (counting from 1) trains at ``i / steps`` of each group's base rate, so
    the first step has a small rate and the last one the full rate; the schedule then starts from its
    own beginning. The schedules it wraps compute their rate from their step count, not from the
    current rate, so holding the rate during the warm-up does not disturb them.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, steps: int, base_lrs: list[float], after: Any) -> None:
        self.optimizer, self.steps, self.base_lrs, self.after = optimizer, steps, base_lrs, after
        self.done = 0  # optimizer steps taken
        self._set(self._warm_lrs())

    def _warm_lrs(self) -> list[float]:
        return [lr * (self.done + 1) / self.steps for lr in self.base_lrs]

    def _set(self, lrs: list[float]) -> None:
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr

    def _after_lrs(self) -> list[float]:
        return list(self.after.get_last_lr()) if self.after is not None else list(self.base_lrs)

    def step(self) -> None:
        self.done += 1
        if self.done < self.steps:
            self._set(self._warm_lrs())
        elif self.done == self.steps:
            self._set(self._after_lrs())  # the schedule's first rate, set when it was made
        elif self.after is not None:
            self.after.step()

    def get_last_lr(self) -> list[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "done": self.done, "base_lrs": list(self.base_lrs),
                "after": self.after.state_dict() if self.after is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.done, self.base_lrs = int(state["steps"]), int(state["done"]), list(state["base_lrs"])
        if self.after is not None and state.get("after") is not None:
            self.after.load_state_dict(state["after"])
        self._set(self._warm_lrs() if self.done < self.steps else self._after_lrs())


def spec_name(spec: object) -> str | None:
    """A name for an optimizer, scheduler or strategy option that is the same in every run."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)):
        return type(spec).__name__.lower()
    return str(getattr(spec, "__qualname__", type(spec).__name__))
