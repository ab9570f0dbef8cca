"""`fit`: train any ``nn.Module`` on a dataset, on one process or several (``torchrun``).

The loop is a plain PyTorch loop with the parts a fine-tune run needs around it: a seeded,
resumable sample order, mixed precision, atomic checkpoints with exact resume, per-epoch
metrics, a best-model save in zoo's ``save_pretrained`` format and distributed data parallel.
A zoo model (one that carries a card) is fine-tuned with a strategy from
`zoo.finetune.strategies`; any other module trains all its trainable parameters.

The parts: `config` (the validated options), `optim` (optimizer and schedule), `loop` (the
steps of an epoch and evaluation), `resume` (what a checkpoint holds and when a run may resume
from it), `run_dir` (the lock on the run folder), `callbacks` (hooks, their state, the best-model
tracker) and `messages` (logging). This module runs them: it prepares a run, goes through its
epochs, checkpoints and hands back a `FitResult`.
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from .._progress import progress_bar
from ..cards import card_or_none
from ..errors import InvalidArgumentError
from . import batches, distributed, evaluation, loop, run_dir
from . import checkpoint as ckpt
from . import report as run_report
from .callbacks import BestModel, Callback, Hooks, callback_states, load_callback_states
from .checkpoint import CheckpointError, NonFiniteError, unwrap_ddp_and_compile
from .config import FIELDS, TRAINING_OPTIONS, TrainerConfig, make_config
from .feature_cache import cached_features, training_companions
from .heads import get_head
from .loggers import build_loggers
from .messages import say
from .metrics import Meter, format_confusion, format_metrics, summary
from .optim import build_optimizer, build_scheduler, optimizer_steps_per_epoch
from .resume import (
    CHECKPOINT_FORMAT,
    check_resumable,
    meter_state,
    plain,
    rank_rng,
    restore_meter,
    resume_path,
    run_config,
)
from .stepping import Updater
from .strategies import Strategy, strategy_for
from .task_metrics import EpochMetric, build_metrics
from .training_parts import TrainingParts

if TYPE_CHECKING:
    from .ema import WeightAverage

__all__ = ["Callback", "FitResult", "Trainer", "TrainerConfig", "evaluate", "fit"]

# Trainer attributes that held options before TrainerConfig, and the config field each one reads now
_RENAMED = {"strategy_spec": "strategy", "loss_spec": "loss", "optimizer_spec": "optimizer",
            "scheduler_spec": "scheduler", "device_spec": "device"}
_OLD_ATTRIBUTES = {**{name: name for name in FIELDS
                      if name not in _RENAMED.values()
                      and name not in ("labels", "metrics", "report", "log", "sharding")
                      and name not in TRAINING_OPTIONS},
                   **_RENAMED}


@dataclass
class FitResult:
    """What a run produced. ``history`` has one dict of metrics per finished epoch.

    `best` is the epoch the best-model tracker chose (by ``monitor``; its model is the one saved in
    ``best_dir`` when the run had a ``checkpoint_dir``), `last` the last finished epoch (the state
    ``model`` is in). ``metrics`` and ``confusion`` are the last epoch's, as before. `stopped` is a
    run stopped on request (it can resume), `early_stopped` one that early stopping ended (it is
    finished). `ema` holds the averaged weights (a state dict) when the run kept an average.
    """

    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    confusion: list[list[int]] | None = None
    labels: list[str] | None = None
    monitor: str | None = None
    best_value: float | None = None
    best_epoch: int | None = None
    best_dir: Path | None = None
    checkpoint: Path | None = None
    stopped: bool = False
    early_stopped: bool = False
    ema: dict[str, torch.Tensor] | None = None

    @property
    def metrics(self) -> dict[str, Any]:
        """The last finished epoch's metrics."""
        return self.history[-1] if self.history else {}

    @property
    def best(self) -> dict[str, Any]:
        """The best epoch's metrics, its confusion matrix included (empty when no epoch was measured)."""
        return dict(next((h for h in self.history if h.get("epoch") == self.best_epoch), {}))

    @property
    def last(self) -> dict[str, Any]:
        """The last finished epoch's metrics, its confusion matrix included (empty before the first epoch ends)."""
        return dict(self.metrics)


def fit(model: nn.Module, train: Any, val: Any = None, *, config: TrainerConfig | None = None,
        **options: Any) -> FitResult:
    """Train `model` on `train` (and measure it on `val` after each epoch).

    `train` and `val` are map-style datasets yielding ``(inputs, target)`` (or
    ``(*inputs, target)``, or dicts with a ``"labels"`` key), a ``DataLoader`` over one, or a
    pair of tensors ``(x, y)``. Options are the fields of `TrainerConfig` (pass one as `config`,
    keywords override it); the common ones:

        epochs, lr, batch_size (per process), strategy ("freeze_unfreeze" for zoo models),
        loss ("cross_entropy", "mse" or a callable), optimizer ("adamw", "adam", "sgd", an
        optimizer or a function of the parameter groups), scheduler ("cosine", "onecycle",
        "linear", "constant", or a function of the optimizer), precision ("auto", "bf16", "fp16",
        "fp32"), compile, channels_last, checkpoint_dir, resume, seed, callbacks, verbose;
        accumulate_grad_batches, warmup_steps or warmup_epochs, ema_decay and ema_eval,
        early_stopping_patience and min_delta, monitor and monitor_mode, label_smoothing,
        mixup_alpha and cutmix_alpha (see docs/trainer.md, "Training options").
    """
    return Trainer(config, **options).fit(model, train, val)


def evaluate(model: nn.Module, data: Any, *, config: TrainerConfig | None = None, **options: Any) -> dict[str, Any]:
    """Loss, and for classification accuracy and the confusion matrix, of `model` on `data`."""
    return Trainer(config, **options).evaluate(model, data)


@dataclass
class _Data:
    """What one run trains and measures on, ready for the epochs."""

    forward_model: nn.Module  # what the training steps call: the model, its head on cached features, compiled
    eval_model: nn.Module
    train_set: batches.SeededBatches
    train_loader: DataLoader[Any]
    val_loader: DataLoader[Any] | None
    batches: int  # in a whole epoch (the loader's length before a resume moves its start)


class Trainer:
    """Holds a run's configuration; `fit` trains, `evaluate` measures.

    ``Trainer(epochs=3, lr=1e-3)`` takes the fields of `TrainerConfig` as keywords, or a
    configuration (``Trainer(config, epochs=5)``: keywords override it). Callbacks see the
    trainer's ``config``, ``model``, ``optimizer``, ``scheduler``, ``epoch``, ``step``,
    ``global_step`` (both count batches), ``history``, ``labels``, ``best`` (the best-model
    tracker), ``ema`` (the weight average) and ``scaler`` (the fp16 gradient scaler).
    """

    def __init__(self, config: TrainerConfig | None = None, /, **options: Any) -> None:
        self.config = make_config(config, options)
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.strategy: Strategy | None = None
        self.context = distributed.Context()
        self.epoch = 0
        self.step = 0
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self._stop = False
        self._early_stopped = False
        self._loss_fn: loop.Loss = loop.build_loss(self.config)
        self._train_loss_fn: loop.Loss = loop.build_loss(self.config, training=True)
        self.parts = TrainingParts()
        self._metrics: list[EpochMetric] = []
        self._errors: list[tuple[int, int, int]] = []  # the last measurement's misclassified samples
        self._val_data: Any = None
        self._fresh_run(self.config.labels)

    @property
    def ema(self) -> WeightAverage | None:
        """The weight average (``ema_decay``), None without one."""
        return self.parts.ema

    @property
    def scaler(self) -> torch.amp.GradScaler | None:
        """The fp16 gradient scaler, None in other precisions."""
        return self.parts.scaler

    def __getattr__(self, name: str) -> Any:
        if name in _OLD_ATTRIBUTES:  # options were attributes of the trainer before TrainerConfig
            warnings.warn(f"Trainer.{name} is deprecated; read trainer.config.{_OLD_ATTRIBUTES[name]}",
                          DeprecationWarning, stacklevel=2)
            return getattr(self.config, _OLD_ATTRIBUTES[name])
        raise AttributeError(f"'Trainer' object has no attribute {name!r}")

    # ------------------------------------------------------------------ public

    def request_stop(self) -> None:
        """Finish the current step, write a checkpoint and return (``resume=True`` continues)."""
        self._stop = True

    def evaluate(self, model: nn.Module, data: Any) -> dict[str, Any]:
        """Loss, and for classification accuracy and the confusion matrix, of `model` on `data`."""
        self.context = context = distributed.setup(self.config.device)
        try:
            model.to(context.device)
            labels = self.config.labels if self.config.labels is not None else batches.labels_of(data)
            self._metrics = self._build_metrics(model, labels)
            loader = self._loader(batches.as_dataset(data), shuffle=False, pad=False, collate=batches.collate_of(data))
            return self._measure(model, loader)
        finally:
            distributed.teardown(context)

    def fit(self, model: nn.Module, train: Any, val: Any = None) -> FitResult:
        """Train `model` on `train`, measuring it on `val` after each epoch (see `zoo.finetune.fit`)."""
        self.context = context = distributed.setup(self.config.device)
        try:
            with self._interrupt_handler(), self._own_run_folder():
                return self._fit(model, train, val)
        finally:
            for logger in self._loggers:  # a run that failed still closes its logs
                logger.close()
            distributed.teardown(context)

    def save_best(self, metrics: dict[str, Any]) -> None:
        """Save the model as the run's best (``best/`` in the run folder), with `metrics` beside it."""
        folder = self.config.run_folder
        if folder is None or self.model is None:
            return
        with self._whole_model() as whole:  # a sharded model is gathered on the first process
            if self.context.is_main and whole is not None:
                info = {"epoch": metrics["epoch"], "monitor": self.best.monitor, "value": self.best.value,
                        "metrics": summary(metrics), "labels": self.labels,
                        "ema": self.config.ema_eval, **self._data_info}
                with self.parts.measured_weights():
                    ckpt.save_best(whole, folder / ckpt.BEST, extra=info, labels=self.labels)
        if self.context.is_main and self.config.report and self._val_data is not None:
            # the saved model's mistakes, for the report
            run_report.write_samples(folder, run_report.describe_samples(self._val_data, self._errors, self.labels))
        distributed.barrier(self.context)

    # ------------------------------------------------------------------ the run

    def _fit(self, model: nn.Module, train: Any, val: Any) -> FitResult:
        self._start(model, train, val)
        data = self._prepare_data(model, train, val)
        assert self.optimizer is not None  # built by _prepare_data
        config = self.config
        self.scheduler = build_scheduler(config, self.optimizer,
                                         optimizer_steps_per_epoch(data.batches, config.accumulate_grad_batches))
        self.parts = TrainingParts.build(config, model, self.context.device, self._num_classes(model))
        if self.config.compile:
            data.forward_model = torch.compile(data.forward_model)  # type: ignore[assignment]
        meter = self._resume_or_start(model)
        if self.config.run_folder is not None and self.context.is_main:
            ckpt.remove_stale_temporaries(self.config.run_folder)
        self._hooks.call("on_fit_start", self)
        # replay the strategy's schedule up to the current epoch: a resumed run freezes what the original had frozen
        for past in range(min(self.epoch, self.config.epochs)):
            self._strategy_epoch_start(model, past)
        stopped = self._run_epochs(model, data, meter)
        return self._finish(model, stopped)

    def _start(self, model: nn.Module, train: Any, val: Any = None) -> None:
        """Seed, place the model, set up its strategy, start afresh."""
        config, context = self.config, self.context
        if val is None and config.monitor is not None and config.monitor.startswith("val_"):
            raise InvalidArgumentError(f"monitor={config.monitor!r} needs validation data: pass val, or monitor a "
                                       "training metric such as 'train_loss'")
        self._data_info = _data_info(train, val)
        ckpt.seed_everything(config.seed + context.rank)
        self.model = model
        model.to(context.device)
        if loop.wants_channels_last(config, context.device, model):
            model.to(memory_format=torch.channels_last)
        self.strategy = strategy_for(model, config.strategy)
        if self.strategy is not None:
            self.strategy.setup(model)
        self._fresh_run(config.labels if config.labels is not None else batches.labels_of(train))
        self._metrics = self._build_metrics(model, self.labels)
        self._val_data, self._errors = (batches.as_dataset(val) if val is not None else None), []

    def _fresh_run(self, labels: Sequence[str] | None) -> None:
        """A new best-model tracker (first among the callbacks) and loss watch, and the run's class names."""
        self.labels: list[str] | None = list(labels) if labels is not None else None
        config = self.config
        self.best = BestModel(config.monitor, config.monitor_mode)
        self._loggers = build_loggers(config.log)
        self._hooks = Hooks([self.best, *config.callbacks, *self._loggers])
        self._losses = loop.NonFiniteLosses(loop.SCALER_PATIENCE if config.precision == "fp16" else 1)

    def _build_metrics(self, model: nn.Module, labels: Sequence[str] | None) -> list[EpochMetric]:
        """The task metrics the validation measures: `config.metrics`, or the card's task's."""
        card = card_or_none(unwrap_ddp_and_compile(model))
        vocab = getattr(unwrap_ddp_and_compile(model), "labels", None)
        return build_metrics(self.config.metrics, task=card.task if card is not None else None, loss=self.config.loss,
                             labels=labels, vocab=vocab if isinstance(vocab, (list, tuple)) else None)

    def _num_classes(self, model: nn.Module) -> int | None:
        """How many classes the model predicts, for MixUp and CutMix: the data's class names, or its card."""
        if self.labels is not None:
            return len(self.labels)
        card = card_or_none(unwrap_ddp_and_compile(model))
        return card.num_classes if card is not None else None

    def _prepare_data(self, model: nn.Module, train: Any, val: Any) -> _Data:
        """Loaders (over cached backbone features when the strategy allows it) and the optimizer."""
        forward_model = eval_model = model
        if self._use_feature_cache(model, train, val):
            # the frozen backbone runs once over the data; every epoch trains the head on its output
            train, val = self._cached(model, train), (self._cached(model, val) if val is not None else None)
            forward_model = eval_model = get_head(model)[1]
        if self._sharded:
            from . import sharding  # loads FSDP only for a run that shards

            sharding.shard(model, self.context)  # before the optimizer: it takes the sharded parameters
        self.optimizer = build_optimizer(self.config, model)
        train_set = batches.SeededBatches(batches.as_dataset(train), self.config.seed)
        train_loader = self._loader(train_set, shuffle=True, pad=True, collate=batches.collate_of(train))
        val_loader = (self._loader(batches.as_dataset(val), shuffle=False, pad=False, collate=batches.collate_of(val))
                      if val is not None else None)
        return _Data(forward_model, eval_model, train_set, train_loader, val_loader, len(train_loader))

    def _run_epochs(self, model: nn.Module, data: _Data, meter: Meter) -> bool:
        """Train epoch after epoch; True when the run stopped on request before its last epoch."""
        config, context = self.config, self.context
        ddp_model: nn.Module | None = None
        trainable: tuple[bool, ...] | None = None
        if self._stopped_early():  # resumed from a run that early stopping had ended
            return False
        while self.epoch < config.epochs:
            epoch = self.epoch
            self._strategy_epoch_start(model, epoch)
            if context.is_distributed and not self._sharded:
                now_trainable = tuple(p.requires_grad for p in model.parameters())
                if now_trainable != trainable:  # DDP syncs only what was trainable when it was built
                    ddp_model, trainable = distributed.wrap_ddp(data.forward_model, context), now_trainable
            self._hooks.call("on_epoch_start", self, epoch)
            data.train_set.epoch = epoch
            data.train_loader.sampler.set_position(epoch, self.step * config.batch_size)  # type: ignore[attr-defined]
            if self.step == 0:
                meter = Meter(context.device)
            started = time.perf_counter()
            if self._train_epoch(ddp_model or data.forward_model, data, meter):
                self._save_checkpoint(model, meter)  # stopped inside the epoch
                return True
            self._end_epoch(model, data, meter, epoch, started)
            if self._stopped_early():
                return False
            if distributed.broadcast_flag(self._stop, context) and self.epoch < config.epochs:
                return True
        return False

    def _stopped_early(self) -> bool:
        """Early stopping ended the run (every process measured the same metrics, so all agree)."""
        stopping = self.parts.early_stopping
        if stopping is None or not stopping.should_stop or self.epoch >= self.config.epochs:
            return False
        self._early_stopped = True
        self._say(f"early stopping: {stopping.watch.name or self.best.monitor} has not improved by more than "
                  f"{stopping.min_delta:g} for {stopping.waited} epochs; the run ends after epoch {self.epoch}")
        return True

    def _train_epoch(self, runner: nn.Module, data: _Data, meter: Meter) -> bool:
        """One pass over the training data from the current step; True when a stop was requested."""
        config, context = self.config, self.context
        assert self.model is not None and self.optimizer is not None  # set by _start and _prepare_data
        total = data.batches
        show = config.progress and context.is_main
        bar = progress_bar(enabled=show, total=total, initial=self.step, description=f"epoch {self.epoch + 1}/"
                           f"{config.epochs}", leave=False, dynamic_ncols=True, mininterval=0.5)
        parts = self.parts
        updater = Updater(self.optimizer, self.scheduler, self.model, config.grad_clip, parts.scaler, parts.ema,
                          config.accumulate_grad_batches)
        steps = loop.train_steps(runner, self._train_loss_fn, data.train_loader, meter, updater=updater,
                                 first=self.step, epoch_batches=total, mix=parts.mix,
                                 autocast=loop.autocast_for(config, context.device),
                                 channels_last=loop.wants_channels_last(config, context.device, self.model),
                                 device=context.device)
        with contextlib.closing(steps), contextlib.closing(bar):
            for loss in steps:
                self.step += 1
                self.global_step += 1
                self._losses.record(loss, self.epoch + 1, self.step)
                if self._losses.pending >= loop.LOSS_CHECK_EVERY:
                    self._check_losses()
                bar.update(1)
                if show and self.step % 10 == 1:
                    bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
                self._hooks.call("on_step_end", self, self.step, loss)
                if self.step % config.accumulate_grad_batches and self.step < total:
                    continue  # inside an accumulation window: checkpoints and stops wait for its optimizer step
                if config.checkpoint_every and self.step % config.checkpoint_every == 0 and self.step < total:
                    self._save_checkpoint(self.model, meter)
                if distributed.broadcast_flag(self._stop, context) and self.step < total:
                    self._stop = True
                    return True
        return False

    def _end_epoch(self, model: nn.Module, data: _Data, meter: Meter, epoch: int, started: float) -> None:
        """Metrics of the finished epoch, its line, the epoch-end hooks (best model first) and a checkpoint."""
        assert self.optimizer is not None  # built by _prepare_data
        self._check_numerics(model)
        metrics: dict[str, Any] = {"epoch": epoch + 1}
        metrics.update({f"train_{k}": v for k, v in meter.compute(self.context).items()})
        if data.val_loader is not None:
            with self.parts.measured_weights():
                measured = self._measure(data.eval_model, data.val_loader)
            metrics.update({f"val_{k}": v for k, v in measured.items()})
        metrics["lr"] = self.optimizer.param_groups[0]["lr"]
        metrics["seconds"] = time.perf_counter() - started
        self.history.append(metrics)
        self.epoch, self.step = epoch + 1, 0
        self._say(f"epoch {epoch + 1}/{self.config.epochs}: {format_metrics(metrics)}")
        self._hooks.call("on_epoch_end", self, epoch, metrics)
        if self.parts.early_stopping is not None:
            self.parts.early_stopping.update(metrics)
        self._save_checkpoint(model, meter)

    def _finish(self, model: nn.Module, stopped: bool) -> FitResult:
        folder = self.config.run_folder
        if stopped:
            where = f"; resume with resume=True from {folder}" if folder is not None else ""
            self._say(f"stopped at epoch {self.epoch + 1}, step {self.step}{where}")
        last = self.history[-1] if self.history else {}
        best_dir = folder / ckpt.BEST if folder is not None and (folder / ckpt.BEST).is_dir() else None
        result = FitResult(model=model, history=self.history,
                           confusion=last.get("val_confusion", last.get("train_confusion")), labels=self.labels,
                           monitor=self.best.monitor, best_value=self.best.value, best_epoch=self.best.epoch,
                           best_dir=best_dir, checkpoint=folder / ckpt.LAST if folder is not None else None,
                           stopped=stopped, early_stopped=self._early_stopped,
                           ema=self.ema.state_dict() if self.ema is not None else None)
        if not stopped:
            self._say_best_confusion(result)
            self._write_report(result)
        self._hooks.call("on_fit_end", self, result)
        return result

    def _say_best_confusion(self, result: FitResult) -> None:
        """The confusion matrix of the best epoch (the saved model's), said to be that epoch's."""
        best = result.best
        matrix = best.get("val_confusion", best.get("train_confusion"))
        if matrix is None:
            return
        saved = f", the model saved in {result.best_dir}" if result.best_dir is not None else ""
        self._say(f"confusion matrix of epoch {result.best_epoch}, the best by {result.monitor}{saved} "
                  f"(rows: true class):\n" + format_confusion(matrix, self.labels))

    def _write_report(self, result: FitResult) -> None:
        """The plots and report.html of a finished run, in its run folder (first process only)."""
        folder = self.config.run_folder
        if folder is None or not self.config.report or not self.context.is_main or not result.history:
            return
        try:
            path = run_report.write_report(folder, result.history, self.labels, result.best_epoch, result.monitor)
        except ImportError as exc:  # matplotlib is a dependency, but an install may lack it
            self._say(f"no plots or report: {exc} (pip install matplotlib)")
            return
        self._say(f"report: {path}")

    def _measure(self, model: nn.Module, loader: DataLoader[Any]) -> dict[str, Any]:
        device = self.context.device
        measured = evaluation.measure(model, self._loss_fn, loader, self.context, metrics=self._metrics,
                                      autocast=loop.autocast_for(self.config, device),
                                      channels_last=loop.wants_channels_last(self.config, device, model))
        self._errors = measured.errors
        return measured.metrics

    # ------------------------------------------------------------------ data

    def _loader(self, dataset: Dataset[Any], *, shuffle: bool, pad: bool, collate: Any) -> DataLoader[Any]:
        return loop.make_loader(self.config, self.context, dataset, shuffle=shuffle, pad=pad, collate=collate)

    def _use_feature_cache(self, model: nn.Module, train: Any, val: Any) -> bool:
        """The strategy allows it (frozen backbone), no companion of the head trains, and the data is the same
        every epoch (no augmentation)."""
        if self.config.feature_cache is False or self._sharded or not getattr(self.strategy, "uses_feature_cache",
                                                                              False):
            return False
        training = training_companions(model)
        if training:
            if self.config.feature_cache:
                self._say(f"feature cache not used: {', '.join(training)} beside the head are new and train with it, "
                          "and the cache records only what the head reads")
            return False
        if self.config.mixup_alpha or self.config.cutmix_alpha:
            if self.config.feature_cache:
                raise InvalidArgumentError("feature_cache=True cannot go with mixup_alpha or cutmix_alpha: mixed "
                                           "images give other features every epoch")
            return False
        fixed = [data for data in (train, val) if data is not None]
        if all(batches.data_fingerprint(data) is not None and batches.is_deterministic(data) for data in fixed):
            return True
        if self.config.feature_cache:
            raise InvalidArgumentError(
                "feature_cache=True needs data without random augmentation that can be identified: a zoo.data "
                "reader with augment=False, a TensorDataset, or a dataset with 'augments = False' and a 'fingerprint'")
        return False

    def _cached(self, model: nn.Module, data: Any) -> Dataset[Any]:
        dataset = batches.as_dataset(data)
        collate = batches.collate_of(data)
        loader = DataLoader(dataset, batch_size=max(self.config.batch_size, 64), shuffle=False,
                            collate_fn=collate or default_collate, num_workers=self.config.num_workers)
        pairs = (batches.split_batch(batch) for batch in loader)  # only iterated when the cache misses
        with distributed.local_main_first(self.context):  # one process per machine computes, the others read
            cached = cached_features(model, pairs, data=batches.data_fingerprint(data),
                                     preprocessing=(getattr(dataset, "transform", None), repr(collate)),
                                     cache_dir=self.config.feature_cache_dir, device=self.context.device,
                                     precision=self.config.precision, channels_last=self.config.channels_last)
        self._say(f"features {'read from' if cached.hit else 'computed and stored in'} {cached.path}")
        assert cached.labels is not None  # extracted with labels
        return TensorDataset(cached.features, cached.labels)

    def _strategy_epoch_start(self, model: nn.Module, epoch: int) -> None:
        if self.strategy is not None:
            self.strategy.on_epoch_start(model, epoch, self.config.epochs)

    # ------------------------------------------------------------------ checkpoints

    def _resume_or_start(self, model: nn.Module) -> Meter:
        """Take the run's state from the checkpoint to resume from, or start at epoch 0; the epoch's meter."""
        meter = Meter(self.context.device)
        loaded = self._resume_state(model)
        if loaded is None:
            self.epoch, self.step, self.global_step, self.history = 0, 0, 0, []
            return meter
        state, path = loaded
        self._restore(state, path, model)
        if state.get("meter") is not None and self.step > 0:
            restore_meter(meter, state["meter"])
        self._say(f"resumed from epoch {self.epoch + 1}, step {self.step}")
        return meter

    def _resume_state(self, model: nn.Module) -> tuple[dict[str, Any], Path] | None:
        """The checkpoint to resume from and its path, checked against this run before anything is loaded."""
        path = resume_path(self.config)
        if path is None:
            return None
        # rank 0 reads the checkpoint for every process: the run folder may be on its machine's disk alone
        state = distributed.from_main(lambda: ckpt.load(path) if path.exists() or self.config.resume is not True
                                      else None, self.context)
        if state is None:
            self._say(f"no checkpoint at {path} yet; starting from the beginning")
            return None
        check_resumable(state, path, self._run_config(model), model.state_dict())
        epochs = state.get("config", {}).get("epochs")
        if epochs not in (None, self.config.epochs):
            self._say(f"the checkpoint's run had epochs={epochs}; this run goes on to epochs={self.config.epochs} "
                      "(the learning-rate schedule follows the new number)")
        return state, path

    def _restore(self, state: dict[str, Any], path: Path, model: nn.Module) -> None:
        assert self.optimizer is not None  # built by _prepare_data
        try:
            if self._sharded:
                from . import sharding  # loads FSDP only for a run that shards

                sharding.load_full_state(model, self.optimizer, state["model"], state["optimizer"])
            else:
                model.load_state_dict(state["model"])
                self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            ckpt.set_rng_state(rank_rng(state["rng"], self.context.rank, self.context.world_size))
            self.best.load_state_dict(state.get("best"))
            self.parts.load_state_dict(state)
            load_callback_states(self.config.callbacks, state.get("callbacks") or {})
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"checkpoint {path} does not fit this run ({reason}); start without resume") from exc
        self.epoch, self.step, self.global_step = state["epoch"], state["step"], state["global_step"]
        self.history = list(state["history"])

    def _run_config(self, model: nn.Module) -> dict[str, Any]:
        return run_config(self.config, model, self.context.world_size, self.strategy)

    def _save_checkpoint(self, model: nn.Module, meter: Meter) -> None:
        folder = self.config.run_folder
        if folder is None:
            return
        assert self.optimizer is not None  # built by _prepare_data
        self._check_numerics(model)
        context = self.context
        rng = [ckpt.rng_state()]
        if context.is_distributed:
            gathered: list[Any] = [None] * context.world_size
            torch.distributed.all_gather_object(gathered, rng[0])
            rng = gathered
        model_state, optimizer_state = self._full_states(model)
        if context.is_main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "epoch": self.epoch, "step": self.step, "global_step": self.global_step,
                "model": model_state,
                "optimizer": optimizer_state,
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "rng": rng,
                "history": self.history,
                "best": self.best.state_dict(),
                **self.parts.state_dict(),
                "callbacks": callback_states(self.config.callbacks),
                "meter": meter_state(meter),
                "config": self._run_config(model),
            }
            ckpt.save(plain(state), folder / ckpt.LAST)
        distributed.barrier(context)

    @property
    def _sharded(self) -> bool:
        """The run shards its model (``sharding``) over several processes; one process has nothing to shard."""
        return self.config.sharding is not None and self.context.is_distributed

    def _full_states(self, model: nn.Module) -> tuple[dict[str, Any], dict[str, Any]]:
        """The model's and the optimizer's state as a checkpoint holds them (gathered on rank 0 when sharded)."""
        assert self.optimizer is not None  # built by _prepare_data
        if not self._sharded:
            return model.state_dict(), self.optimizer.state_dict()
        from . import sharding  # loads FSDP only for a run that shards

        return sharding.full_model_state(model), sharding.full_optimizer_state(model, self.optimizer)

    def _whole_model(self) -> contextlib.AbstractContextManager[nn.Module | None]:
        """The model to save: itself, or when sharded a gathered copy on rank 0 (every process must enter it)."""
        assert self.model is not None  # set by _start
        if not self._sharded:
            return contextlib.nullcontext(unwrap_ddp_and_compile(self.model))
        from . import sharding  # loads FSDP only for a run that shards

        return sharding.unsharded_copy(self.model, self.context)

    def _own_run_folder(self) -> contextlib.AbstractContextManager[Any]:
        """The main process owns the checkpoint folder for the run: a second run on it is refused."""
        folder = self.config.run_folder
        if folder is None or not self.context.is_main:
            return contextlib.nullcontext()
        return run_dir.hold(folder)

    # ------------------------------------------------------------------ numerics

    def _check_losses(self) -> None:
        """Stop with `NonFiniteError` once the losses read so far went NaN or Inf (on any process)."""
        failure = self._losses.failure()
        if distributed.broadcast_flag(failure is not None, self.context):
            where = (f"{failure[0]} at epoch {failure[1]}, step {failure[2]}" if failure
                     else "NaN or Inf on another process")
            raise NonFiniteError(f"the training loss became {where}; {self._numerics_advice()}")

    def _check_numerics(self, model: nn.Module) -> None:
        """Nothing non-finite is saved: the losses so far and the weights must be finite."""
        self._check_losses()
        ckpt.check_finite(model, f"the model after epoch {self.epoch + 1}, step {self.step}",
                          hint=f"; {self._numerics_advice()}")

    def _numerics_advice(self) -> str:
        folder = self.config.run_folder
        kept = folder / ckpt.LAST if folder is not None else None
        advice = (f"lower the learning rate (lr={self.config.lr:g}; --lr on the command line) or check the data for "
                  "extreme values")
        return advice + (f"; the last good checkpoint is kept in {kept}" if kept is not None and kept.exists() else "")

    # ------------------------------------------------------------------ messages and interrupts

    def _say(self, message: str) -> None:
        say(self.context, message, verbose=self.config.verbose)

    @contextlib.contextmanager
    def _interrupt_handler(self) -> Iterator[None]:
        """First Ctrl-C: finish the step, checkpoint and return; a second one stops at once."""
        if not self.config.handle_interrupt or threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_interrupt(signum: int, frame: FrameType | None) -> None:
            if self._stop:
                raise KeyboardInterrupt
            self._say("\ninterrupt: stopping after this step (press Ctrl-C again to stop at once)")
            self._stop = True

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def _data_source(data: Any) -> str | None:
    """The folder or file a dataset was read from, when it says (zoo's readers keep it as root or path)."""
    source = getattr(data, "root", None) or getattr(data, "path", None)
    return str(source) if source is not None else None


def _data_info(train: Any, val: Any) -> dict[str, Any]:
    """What the saved model card says about the data: its name (the card keeps only the last part) and
    the split the saved metrics were measured on."""
    source = _data_source(train)
    measured_on_train = val is None or _data_source(val) == source
    info: dict[str, Any] = {"split": "train" if measured_on_train else "validation"}
    if source is not None:
        info["dataset"] = source
    return info

