"""The epoch loop's mechanics: loaders, the training step, evaluation and the loss watch.

Nothing here knows about checkpoints or callbacks: `train_steps` runs the steps of one epoch and
hands each loss back, and the trainer decides what happens between steps. Nothing synchronises
with the device per step: losses stay on the device and are read every `LOSS_CHECK_EVERY` steps.
"""
from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Generator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from ..errors import ZooError
from . import batches, distributed
from .config import TrainerConfig
from .metrics import Meter
from .mixing import Mixing
from .stepping import Updater, no_sync

LOSS_CHECK_EVERY = 10  # steps between reads of the losses (the progress bar reads one as often)
Loss = Callable[..., torch.Tensor]
SCALER_PATIENCE = 20  # non-finite fp16 losses in a row (steps the scaler skipped) before a run stops


def build_loss(config: TrainerConfig, *, training: bool = False) -> Loss:
    """The loss function `config.loss` names, or the callable given.

    The training loss takes `config.label_smoothing`; the loss a run is measured with does not,
    so ``val_loss`` stays the plain cross entropy whatever the smoothing.
    """
    if config.loss == "cross_entropy":
        if training and config.label_smoothing:
            return functools.partial(cross_entropy, label_smoothing=float(config.label_smoothing))
        return cross_entropy
    if config.loss == "mse":
        return nn.MSELoss()
    assert callable(config.loss)  # the configuration allows names or callables
    return config.loss


def cross_entropy(output: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross entropy per sample, or per token: scores ``(N, T, C)`` (class last, as token classifiers
    give them) against classes ``(N, T)``, averaged over the labelled tokens (targets of -100 count
    for nothing; a batch without a labelled token has loss 0, not NaN). Soft targets ``(N, C)``
    (class probabilities, as MixUp and CutMix make them) work too."""
    if output.dim() == 3 and target.dim() == 2 and output.shape[:2] == target.shape:
        total = F.cross_entropy(output.reshape(-1, output.shape[-1]), target.reshape(-1), reduction="sum",
                                ignore_index=batches.IGNORE_INDEX, label_smoothing=label_smoothing)
        return total / target.ne(batches.IGNORE_INDEX).sum().clamp(min=1)
    return F.cross_entropy(output, target, ignore_index=batches.IGNORE_INDEX, label_smoothing=label_smoothing)


def make_loader(config: TrainerConfig, context: distributed.Context, dataset: Dataset[Any], *, shuffle: bool,
                pad: bool, collate: Callable[..., Any] | None) -> DataLoader[Any]:
    """This process's share of `dataset`, in the seeded order that a resumed run repeats."""
    sampler = distributed.ResumableSampler(len(dataset), shuffle=shuffle, seed=config.seed,  # type: ignore[arg-type]
                                           rank=context.rank, world_size=context.world_size, pad=pad)
    if len(dataset) == 0:  # type: ignore[arg-type]
        raise ZooError("the dataset is empty: give at least one sample")
    # a last batch of one sample breaks BatchNorm in training; drop it rather than fail
    drop_last = shuffle and sampler.share() % config.batch_size == 1 and sampler.share() > 1
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, collate_fn=collate or default_collate,
                      num_workers=config.num_workers, drop_last=drop_last, pin_memory=context.device.type == "cuda",
                      # its own generator: making an iterator must not draw from the global one,
                      # or a run resumed mid-epoch would see other dropout masks
                      generator=torch.Generator().manual_seed(config.seed))


def autocast_for(config: TrainerConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """fp16 or bf16 autocast when asked for, bf16 by default on a GPU that supports it; else nothing."""
    if config.precision == "fp16":
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    bf16 = config.precision == "bf16" or (
        config.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def wants_channels_last(config: TrainerConfig, device: torch.device, model: nn.Module | None) -> bool:
    """As configured; by default for convolutional models on a GPU."""
    if config.channels_last is not None:
        return bool(config.channels_last)
    return device.type == "cuda" and model is not None and any(isinstance(m, nn.Conv2d) for m in model.modules())


def train_steps(model: nn.Module, loss_fn: Loss, loader: DataLoader[Any], meter: Meter, *, updater: Updater,
                first: int, epoch_batches: int, autocast: contextlib.AbstractContextManager[Any], channels_last: bool,
                device: torch.device, mix: Mixing | None = None) -> Generator[torch.Tensor, None, None]:
    """Train `model` on each batch of `loader` and yield the batch's loss (still on the device).

    `first` is the index in the epoch of the loader's first batch and `epoch_batches` the epoch's
    length: together they place each batch in its accumulation window (`Updater.window`).
    With `mix`, each batch is mixed first and its training accuracy is measured against the
    class that weighs most in its mixed target.
    """
    model.train()
    updater.optimizer.zero_grad(set_to_none=True)
    index = first
    for batch in loader:
        inputs, target = batches.split_batch(batches.to_device(batch, device, channels_last))
        measured = target
        if mix is not None:
            inputs, target = mix(inputs, target)
            measured = target.argmax(dim=-1)
        window, steps = updater.window(index, epoch_batches)
        with no_sync(model, steps):
            with autocast:
                output = batches.logits(batches.forward(model, inputs))
                loss = loss_fn(output, target)
            updater.backward(loss, window)
        if steps:
            updater.step()
        meter.update(loss, output, measured)
        index += 1
        yield loss


@torch.inference_mode()
def evaluate_loader(model: nn.Module, loss_fn: Loss, loader: DataLoader[Any], context: distributed.Context, *,
                    autocast: contextlib.AbstractContextManager[Any], channels_last: bool) -> dict[str, Any]:
    """Loss (and accuracy and confusion matrix, for classification) of `model` over `loader`, summed over processes."""
    was_training = model.training
    model.eval()
    meter = Meter(context.device)
    try:
        for batch in loader:
            inputs, target = batches.split_batch(batches.to_device(batch, context.device, channels_last))
            with autocast:
                output = batches.logits(batches.forward(model, inputs))
                loss = loss_fn(output, target)
            meter.update(loss.float(), output.float(), target)
    finally:
        model.train(was_training)
    return meter.compute(context)


class NonFiniteLosses:
    """Watches the training loss for NaN and Inf without a synchronisation per step.

    Losses stay on the device and are read every `LOSS_CHECK_EVERY` steps and before each save.
    A run stops once `patience` losses in a row were not finite. Without a gradient scaler (fp32
    and bf16 train without one) that is the first: its gradients have already reached the weights.
    A scaler skips inf steps as part of its work, so with one `patience` counts skipped steps.
    """

    def __init__(self, patience: int = 1) -> None:  # 1 without a scaler; `SCALER_PATIENCE` with one
        self.patience = patience
        self.in_a_row = 0
        self._first: tuple[float, int, int] | None = None  # (loss, epoch, step) that began the current row
        self._pending: list[tuple[torch.Tensor, int, int]] = []

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, loss: torch.Tensor, epoch: int, step: int) -> None:
        self._pending.append((loss.detach().float(), epoch, step))

    def failure(self) -> tuple[float, int, int] | None:
        """(loss, epoch, step) of the first of `patience` non-finite losses in a row, once there are that many."""
        if not self._pending:
            return None
        values = torch.stack([loss for loss, _, _ in self._pending]).tolist()
        places = [(epoch, step) for _, epoch, step in self._pending]
        self._pending.clear()
        for value, (epoch, step) in zip(values, places):
            if math.isfinite(value):
                self.in_a_row, self._first = 0, None
                continue
            self.in_a_row += 1
            self._first = self._first or (value, epoch, step)
            if self.in_a_row >= self.patience:
                return self._first
        return None
