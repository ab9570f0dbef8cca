"""One measurement of a model on data: loss, accuracy and confusion matrix (`Meter`), the task
metrics (`zoo.finetune.task_metrics`), and a few misclassified samples for the run report.
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from . import batches
from .distributed import Context
from .metrics import Meter
from .task_metrics import EpochMetric, compute_all

KEEP_ERRORS = 16  # misclassified samples kept per measurement (on the first process)


@dataclass
class Measured:
    """What a measurement gives: the metrics (the same on every process) and this process's first
    misclassified samples as (dataset index, predicted class, true class)."""

    metrics: dict[str, Any]
    errors: list[tuple[int, int, int]] = field(default_factory=list)


@torch.inference_mode()
def measure(model: nn.Module, loss_fn: Any, loader: DataLoader[Any], context: Context, *,
            autocast: contextlib.AbstractContextManager[Any], channels_last: bool,
            metrics: Sequence[EpochMetric] = (), keep_errors: int = KEEP_ERRORS) -> Measured:
    """Run `model` over `loader` (in eval mode) and measure it; every process must call this."""
    was_training = model.training
    model.eval()
    meter = Meter(context.device)
    for metric in metrics:
        metric.reset()
    order = _indices(loader)
    errors: list[tuple[int, int, int]] = []
    seen = 0
    try:
        for batch in loader:
            inputs, target = batches.split_batch(batches.to_device(batch, context.device, channels_last))
            with autocast:
                output = batches.logits(batches.forward(model, inputs))
                loss = loss_fn(output, target)
            output = output.float()
            meter.update(loss.float(), output, target)
            for metric in metrics:
                metric.update(output, target)
            size = target.shape[0] if isinstance(target, torch.Tensor) and target.dim() else 1
            if len(errors) < keep_errors and order is not None:
                errors += _misclassified(output, target, order[seen:seen + size], keep_errors - len(errors))
            seen += size
    finally:
        model.train(was_training)
    values = meter.compute(context)
    values.update(compute_all(metrics, context))
    return Measured(values, errors)


def _indices(loader: DataLoader[Any]) -> list[int] | None:
    """The dataset index of each sample in the order `loader` gives them (None when it cannot say)."""
    sampler = getattr(loader, "sampler", None)
    try:
        return [int(i) for i in sampler] if sampler is not None else None
    except TypeError:
        return None


def _misclassified(output: torch.Tensor, target: Any, indices: list[int], limit: int) -> list[tuple[int, int, int]]:
    """Up to `limit` samples of one batch (one class per sample) whose predicted class is not the true one."""
    if not isinstance(target, torch.Tensor) or output.dim() != 2 or target.dim() != 1 or target.is_floating_point():
        return []
    predicted = output.argmax(dim=-1)
    wrong = ((predicted != target) & (target >= 0)).nonzero().flatten()[:limit].tolist()
    pairs = torch.stack([predicted, target], dim=1).cpu().tolist() if wrong else []
    return [(indices[i], pairs[i][0], pairs[i][1]) for i in wrong if i < len(indices)]
