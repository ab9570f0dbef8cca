"""Fine-tune zoo models with PyTorch Lightning: `ZooModule` and the `ZooFinetuning` callback.

Lightning is an extra (``pip install lightning``), not a dependency of zoo: importing this module
without it raises an ImportError that says what to install.

    import lightning as L
    from zoo.lightning import ZooFinetuning, ZooModule

    module = ZooModule("resnet18", num_classes=10, lr=1e-3, layer_decay=0.8, best_dir="best-model")
    trainer = L.Trainer(max_epochs=5, callbacks=[ZooFinetuning("freeze_unfreeze")])
    trainer.fit(module, train_loader, val_loader)
    zoo.create("local-dir:best-model")   # the best epoch's model, in zoo's save_pretrained format

`ZooModule` does what `zoo.finetune.fit` does around the steps, with zoo's own parts: the optimizer
over `zoo.finetune.param_groups` (with layer-wise rate decay), zoo's schedules per optimizer step
(with warm-up), zoo's losses, the task's metrics logged under zoo's names (``val_accuracy``,
``val_loss``, ``val_macro_f1``, ...; Lightning's ``ModelCheckpoint`` and ``EarlyStopping`` can
monitor them), one history dict per epoch, and the best model saved in zoo's format. Lightning
runs the loop: devices, precision, accumulation, distributed training, its own loggers.
`ZooFinetuning` applies a zoo strategy (``freeze``, ``freeze_unfreeze``, ``unfreeze_milestones``,
``no_freeze``, ``lora``) with zoo's BatchNorm policy (``bn="frozen"``, ``"affine"`` or ``"train"``).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .cards import card_or_none
from .errors import InvalidArgumentError
from .factory import create
from .finetune import batches
from .finetune.callbacks import BestModel
from .finetune.checkpoint import save_best, unwrap_ddp_and_compile
from .finetune.config import TrainerConfig
from .finetune.distributed import Context
from .finetune.groups import param_groups
from .finetune.loop import build_loss
from .finetune.metrics import Meter, summary
from .finetune.optim import build_scheduler, parameter_groups, weight_decay_of
from .finetune.strategies import Strategy, get_strategy
from .finetune.task_metrics import EpochMetric, build_metrics, compute_all

try:
    import lightning as L  # noqa: N812  # Lightning's own short name
    from lightning.pytorch.callbacks import BaseFinetuning
except ImportError as exc:  # pragma: no cover - only without the extra
    raise ImportError(f"zoo.lightning needs PyTorch Lightning (pip install lightning); importing it failed: "
                      f"{exc}") from exc

__all__ = ["ZooFinetuning", "ZooModule"]

# the options of `TrainerConfig` that ZooModule takes and uses as fit does
_CONFIG_OPTIONS = ("lr", "optimizer", "scheduler", "weight_decay", "momentum", "warmup_steps", "warmup_epochs",
                   "loss", "label_smoothing", "metrics", "monitor", "monitor_mode", "labels")


class ZooModule(L.LightningModule):
    """A LightningModule around a zoo model (or any ``nn.Module``).

    Args:
        model: a model, or a name for `zoo.create` (``"resnet18"``, ``"local-dir:PATH"``, ...).
        num_classes: with a name: the head's number of classes (a new head when it differs).
        pretrained: with a name: passed to `zoo.create` (default: its weights when it has some).
        labels: the class names, saved with the best model and shown in metrics per class.
        layer_decay: each layer group towards the input trains at this fraction of the next one's
            rate (`zoo.finetune.param_groups`; needs a card with ``layer_groups``).
        best_dir: where the best epoch's model is saved in zoo's ``save_pretrained`` format
            (``zoo.create("local-dir:DIR")`` loads it); by ``monitor`` (default: val_accuracy,
            else val_loss, else train_loss). None saves nothing.
        lr, optimizer, scheduler, weight_decay, momentum, warmup_steps, warmup_epochs, loss,
        label_smoothing, metrics, monitor, monitor_mode: as in `zoo.finetune.fit`.

    After (or during) ``trainer.fit``, `history` holds one dict of metrics per finished epoch and
    `best` the best-model tracker (its ``epoch``, ``monitor`` and ``value``).
    """

    def __init__(self, model: nn.Module | str, *, num_classes: int | None = None, pretrained: bool | None = None,
                 labels: Sequence[str] | None = None, lr: float = 1e-3, optimizer: str = "adamw",
                 scheduler: str | None = "cosine", weight_decay: float | None = None, momentum: float = 0.9,
                 warmup_steps: int | None = None, warmup_epochs: float | None = None,
                 layer_decay: float | None = None, loss: str = "cross_entropy", label_smoothing: float = 0.0,
                 metrics: Sequence[object] | None = None, monitor: str | None = None,
                 monitor_mode: str | None = None, best_dir: str | Path | None = None) -> None:
        super().__init__()
        if isinstance(model, str):
            model = create(model, pretrained=pretrained, num_classes=num_classes)
        elif not isinstance(model, nn.Module):
            raise InvalidArgumentError(f"model must be an nn.Module or a model name, got {type(model).__name__}")
        if not (isinstance(optimizer, str) and (scheduler is None or isinstance(scheduler, str))
                and isinstance(loss, str)):
            raise InvalidArgumentError("ZooModule takes optimizer, scheduler and loss by name (see "
                                       "zoo.finetune.options); override configure_optimizers for objects of your own")
        if layer_decay is not None and not 0.0 < layer_decay <= 1.0:
            raise InvalidArgumentError(f"layer_decay must be in (0, 1], got {layer_decay!r}")
        self.model = model
        self.config = TrainerConfig(lr=lr, optimizer=optimizer, scheduler=scheduler, weight_decay=weight_decay,
                                    momentum=momentum, warmup_steps=warmup_steps, warmup_epochs=warmup_epochs,
                                    loss=loss, label_smoothing=label_smoothing, metrics=metrics, monitor=monitor,
                                    monitor_mode=monitor_mode, labels=labels)
        self.layer_decay = layer_decay
        self.labels = list(labels) if labels is not None else None
        self.best_dir = Path(best_dir) if best_dir is not None else None
        self.best = BestModel(monitor, monitor_mode)
        self.history: list[dict[str, Any]] = []
        self._loss = build_loss(self.config)
        self._train_loss = build_loss(self.config, training=True)
        card = card_or_none(model)
        vocab = getattr(model, "labels", None)
        self._task_metrics: list[EpochMetric] = build_metrics(
            self.config.metrics, task=card.task if card is not None else None, loss=loss, labels=self.labels,
            vocab=vocab if isinstance(vocab, (list, tuple)) else None)
        self._train_meter = Meter()
        self._val_meter = Meter()
        self._val_results: dict[str, Any] = {}

    # ------------------------------------------------------------------ the model
    def forward(self, *inputs: Any, **named: Any) -> Any:
        return self.model(*inputs, **named)

    def _outputs(self, batch: Any) -> tuple[torch.Tensor, Any]:
        inputs, target = batches.split_batch(batch)
        return batches.logits(batches.forward(self.model, inputs)), target

    # ------------------------------------------------------------------ steps
    def on_train_epoch_start(self) -> None:
        self._train_meter = Meter(self.device)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        output, target = self._outputs(batch)
        loss = self._train_loss(output, target)
        self._train_meter.update(loss, output, target)
        self.log("train_loss_step", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_meter = Meter(self.device)
        for metric in self._task_metrics:
            metric.reset()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        output, target = self._outputs(batch)
        output = output.float()
        self._val_meter.update(self._loss(output, target).float(), output, target)
        for metric in self._task_metrics:
            metric.update(output, target)

    def on_validation_epoch_end(self) -> None:
        context = self._context()
        results = self._val_meter.compute(context)
        results.update(compute_all(self._task_metrics, context))
        if self.trainer.sanity_checking:  # Lightning's check before training: not an epoch
            return
        self._val_results = {f"val_{key}": value for key, value in results.items()}
        self.log_dict(_numbers(self._val_results), sync_dist=False)  # already summed over processes

    def on_train_epoch_end(self) -> None:
        """The epoch's metrics (validation ran before this hook), its history entry and the best model."""
        train = {f"train_{key}": value for key, value in self._train_meter.compute(self._context()).items()}
        self.log_dict(_numbers(train), sync_dist=False)
        metrics: dict[str, Any] = {"epoch": self.current_epoch + 1, **train, **self._val_results}
        if self.trainer.optimizers:
            metrics["lr"] = float(self.trainer.optimizers[0].param_groups[0]["lr"])
        self._val_results = {}
        self.history.append(metrics)
        if self.best.update(metrics):
            self._save_best(metrics)

    def _save_best(self, metrics: dict[str, Any]) -> None:
        if self.best_dir is None:
            return
        if self.trainer.is_global_zero:
            info = {"epoch": metrics["epoch"], "monitor": self.best.monitor, "value": self.best.value,
                    "metrics": summary(metrics), "labels": self.labels, "trainer": "lightning"}
            save_best(unwrap_ddp_and_compile(self.model), self.best_dir, extra=info, labels=self.labels)
        self.trainer.strategy.barrier("zoo-best-model")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Lightning's checkpoints keep the history and the best-model tracker, so a resumed run goes on with them."""
        checkpoint["zoo"] = {"history": self.history, "best": self.best.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("zoo") or {}
        self.history = list(state.get("history", []))
        self.best.load_state_dict(state.get("best"))

    def _context(self) -> Context:
        """zoo's view of the processes Lightning runs: metrics add their sums up over them."""
        return Context(rank=self.global_rank, world_size=self.trainer.world_size, device=self.device)

    # ------------------------------------------------------------------ optimizer and schedule
    def configure_optimizers(self) -> Any:
        config = self.config
        decay = weight_decay_of(config)
        card = card_or_none(self.model)
        if card is not None and card.layer_groups:
            groups = param_groups(self.model, config.lr, layer_decay=self.layer_decay, weight_decay=decay)
        elif self.layer_decay is not None:
            raise InvalidArgumentError("layer_decay needs a zoo model whose card has layer_groups; this model has "
                                       "none (drop layer_decay)")
        else:
            groups = parameter_groups(self.model, config.lr, decay)
        optimizer = _optimizer(str(config.optimizer), groups, config.lr, config.momentum, decay)
        epochs = self.trainer.max_epochs
        if epochs is None or epochs < 1:
            raise InvalidArgumentError("ZooModule schedules its learning rate over the run: give the Lightning "
                                       "Trainer max_epochs")
        total = self.trainer.estimated_stepping_batches
        per_epoch = max(math.ceil(total / epochs), 1) if math.isfinite(total) else 1
        scheduler = build_scheduler(dataclasses.replace(config, epochs=epochs), optimizer, per_epoch)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def lr_scheduler_step(self, scheduler: Any, metric: Any) -> None:
        """zoo's schedules (warm-up included) step once per optimizer step."""
        scheduler.step()


class ZooFinetuning(BaseFinetuning):
    """Applies a zoo fine-tune strategy in a Lightning run: what is frozen before training and what
    unfreezes at the start of each epoch, with zoo's BatchNorm policy.

    ``ZooFinetuning("freeze_unfreeze", freeze_epochs=2, bn="frozen")``; the options are those of
    `zoo.finetune.get_strategy` (``milestones`` for ``unfreeze_milestones``, ``targets`` for
    ``lora``, ...), or pass a `Strategy`. ZooModule's optimizer holds every parameter from the
    start, frozen ones included, so unfreezing only lets them train (no parameter group is added).
    """

    def __init__(self, strategy: str | Strategy | None = None, **options: Any) -> None:
        super().__init__()
        self.strategy = get_strategy(strategy, **options)

    def freeze_before_training(self, pl_module: L.LightningModule) -> None:
        self.strategy.setup(_zoo_model(pl_module))

    def finetune_function(self, pl_module: L.LightningModule, epoch: int, optimizer: torch.optim.Optimizer) -> None:
        epochs = pl_module.trainer.max_epochs
        if epochs is None or epochs < 1:
            raise InvalidArgumentError("ZooFinetuning schedules by epoch: give the Lightning Trainer max_epochs")
        self.strategy.on_epoch_start(_zoo_model(pl_module), epoch, epochs)


def _zoo_model(pl_module: L.LightningModule) -> nn.Module:
    """The model a strategy works on: a ZooModule's model, or a LightningModule that carries a card itself."""
    model = getattr(pl_module, "model", None)
    if isinstance(pl_module, ZooModule) or (isinstance(model, nn.Module) and card_or_none(model) is not None):
        return model  # type: ignore[return-value]  # checked above
    return pl_module


def _optimizer(name: str, groups: list[dict[str, Any]], lr: float, momentum: float,
               decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=decay)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, weight_decay=decay)
    return torch.optim.AdamW(groups, lr=lr, weight_decay=decay)


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The metrics that are single numbers (Lightning logs no lists)."""
    return {key: float(value) for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and not key.endswith("samples")}
