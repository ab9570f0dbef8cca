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


def build_scheduler(config: TrainerConfig, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
    """The per-step schedule `config.scheduler` names over `total_steps` (None for a constant rate)."""
    spec = config.scheduler
    if spec is None or spec == "constant":
        return None
    if not isinstance(spec, str):
        if is_scheduler(spec) or not callable(spec):  # a scheduler object (the configuration allows no other)
            return spec
        return spec(optimizer)
    total = max(total_steps, 1)
    if spec == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    if spec == "linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / total))
    peak = [group["lr"] for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=total + 1)


def spec_name(spec: object) -> str | None:
    """A name for an optimizer, scheduler or strategy option that is the same in every run."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)):
        return type(spec).__name__.lower()
    return str(getattr(spec, "__qualname__", type(spec).__name__))
