"""The optimizer update of a training run: backward passes, gradient accumulation, the fp16 gradient
scaler, clipping, the optimizer and schedule steps and the weight average.

With ``accumulate_grad_batches=k`` the gradients of k batches are added up before one optimizer
step; each batch's loss is divided by the number of batches in its window, so the update is the
mean over the window's batches, as one batch k times larger would give (equal-sized batches).
An epoch whose batch count is not a multiple of k ends with a shorter window, stepped at the
epoch's end and divided by its own length. Under DDP the gradients are synchronised only on the
batch that steps.
"""
from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .ema import WeightAverage


def make_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler | None:
    """A gradient scaler for fp16 (its small range would let gradients underflow), None otherwise."""
    if precision != "fp16":
        return None
    return torch.amp.GradScaler(device.type)


@dataclass
class Updater:
    """Turns losses into weight updates; `step` once a window of batches is complete."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    clipped: nn.Module  # the module whose gradients grad_clip limits (the model itself, not a wrapper)
    grad_clip: float | None = None
    scaler: torch.amp.GradScaler | None = None
    ema: WeightAverage | None = None
    accumulate: int = 1

    def window(self, batch: int, batches: int) -> tuple[int, bool]:
        """For the `batch`-th batch (from 0) of an epoch of `batches`: its window's length and whether it steps."""
        start = batch - batch % self.accumulate
        length = min(self.accumulate, batches - start)
        return length, batch + 1 == start + length

    def backward(self, loss: torch.Tensor, window: int) -> None:
        if window > 1:
            loss = loss / window
        if self.scaler is not None:
            loss = self.scaler.scale(loss)
        loss.backward()  # type: ignore[no-untyped-call]

    def step(self) -> None:
        optimizer, scaler = self.optimizer, self.scaler
        if scaler is not None and self.grad_clip is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
        if self.grad_clip is not None:
            nn.utils.clip_grad_norm_([p for p in self.clipped.parameters() if p.grad is not None], self.grad_clip)
        if scaler is not None:
            scaler.step(optimizer)  # skipped when the gradients overflowed
            scaler.update()
        else:
            optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None:
            if scaler is not None:
                with warnings.catch_warnings():  # a skipped fp16 step still counts in the schedule
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                    self.scheduler.step()
            else:
                self.scheduler.step()
        if self.ema is not None:
            self.ema.update()


def no_sync(model: nn.Module, syncs: bool) -> contextlib.AbstractContextManager[Any]:
    """DDP's ``no_sync`` for a batch whose gradients stay local until the window's last one."""
    if syncs or not hasattr(model, "no_sync"):
        return contextlib.nullcontext()
    return model.no_sync()  # type: ignore[no-any-return, operator]
