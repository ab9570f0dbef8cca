"""`fit`: train any ``nn.Module`` on a dataset, on one process or several (``torchrun``).

The loop is a plain PyTorch loop with the parts a fine-tune run needs around it: a seeded,
resumable sample order, mixed precision, atomic checkpoints with exact resume, per-epoch
metrics, a best-model save in zoo's ``save_pretrained`` format and distributed data parallel.
A zoo model (one that carries a card) is fine-tuned with a strategy from
`zoo.finetune.strategies`; any other module trains all its trainable parameters.
"""
from __future__ import annotations

import contextlib
import math
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset, default_collate

from ..errors import InvalidArgumentError, ZooError
from . import batches
from . import checkpoint as ckpt
from . import distributed
from .metrics import Meter, format_confusion, format_metrics

PRECISIONS = ("auto", "bf16", "fp32")
LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "onecycle", "linear", "constant")
CHECKPOINT_FORMAT = 1


# ---------------------------------------------------------------------------- public types


class Callback:
    """Hooks into a run; override what you need. ``trainer.request_stop()`` ends a run cleanly
    (a checkpoint is written, and ``resume=True`` continues from it)."""

    def on_fit_start(self, trainer: "Trainer") -> None: ...
    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None: ...
    def on_step_end(self, trainer: "Trainer", step: int, loss: torch.Tensor) -> None: ...
    def on_epoch_end(self, trainer: "Trainer", epoch: int, metrics: dict[str, Any]) -> None: ...
    def on_fit_end(self, trainer: "Trainer", result: "FitResult") -> None: ...


@dataclass
class FitResult:
    """What a run produced. ``history`` has one dict of metrics per finished epoch."""

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

    @property
    def metrics(self) -> dict[str, Any]:
        """The last finished epoch's metrics."""
        return self.history[-1] if self.history else {}


def fit(model: nn.Module, train: Any, val: Any = None, **options: Any) -> FitResult:
    """Train `model` on `train` (and measure it on `val` after each epoch).

    `train` and `val` are map-style datasets yielding ``(inputs, target)`` (or
    ``(*inputs, target)``, or dicts with a ``"labels"`` key), a ``DataLoader`` over one, or a
    pair of tensors ``(x, y)``. Options are those of `Trainer`; the common ones:

        epochs, lr, batch_size (per process), strategy ("freeze_unfreeze" for zoo models),
        loss ("cross_entropy", "mse" or a callable), optimizer ("adamw", "adam", "sgd", an
        optimizer or a function of the parameter groups), scheduler ("cosine", "onecycle",
        "linear", "constant", or a function of the optimizer), precision ("auto", "bf16",
        "fp32"), compile, channels_last, checkpoint_dir, resume, seed, callbacks.
    """
    return Trainer(**options).fit(model, train, val)


def evaluate(model: nn.Module, data: Any, **options: Any) -> dict[str, Any]:
    """Loss, and for classification accuracy and the confusion matrix, of `model` on `data`."""
    return Trainer(**options).evaluate(model, data)


# ---------------------------------------------------------------------------- the trainer


class Trainer:
    """Holds a run's options; `fit` trains, `evaluate` measures. Callbacks see the trainer's
    ``model``, ``optimizer``, ``scheduler``, ``epoch``, ``step``, ``global_step`` and ``history``."""

    def __init__(
        self,
        *,
        epochs: int = 1,
        lr: float = 1e-3,
        batch_size: int = 32,
        strategy: Any = None,
        loss: str | Callable[..., torch.Tensor] = "cross_entropy",
        optimizer: Any = "adamw",
        scheduler: Any = "cosine",
        weight_decay: float | None = None,
        momentum: float = 0.9,
        precision: str = "auto",
        compile: bool = False,
        channels_last: bool | None = None,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        resume: bool | str | Path = False,
        seed: int = 0,
        callbacks: Sequence[Any] = (),
        device: str | torch.device | None = None,
        num_workers: int = 0,
        grad_clip: float | None = None,
        labels: Sequence[str] | None = None,
        progress: bool = True,
        verbose: bool = True,
        handle_interrupt: bool = True,
        feature_cache: bool | None = None,
        feature_cache_dir: str | Path | None = None,
    ) -> None:
        if epochs < 0 or not isinstance(epochs, int):
            raise InvalidArgumentError(f"epochs must be a non-negative integer, got {epochs!r}")
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size must be at least 1, got {batch_size!r}")
        if precision not in PRECISIONS:
            raise InvalidArgumentError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        if isinstance(loss, str) and loss not in LOSSES:
            raise InvalidArgumentError(f"loss must be one of {LOSSES} or a callable, got {loss!r}")
        if isinstance(optimizer, str) and optimizer not in OPTIMIZERS:
            raise InvalidArgumentError(f"optimizer must be one of {OPTIMIZERS}, an optimizer or a function, got {optimizer!r}")
        if isinstance(scheduler, str) and scheduler not in SCHEDULERS:
            raise InvalidArgumentError(f"scheduler must be one of {SCHEDULERS}, None or a function, got {scheduler!r}")
        if resume and checkpoint_dir is None and not isinstance(resume, (str, Path)):
            raise InvalidArgumentError("resume=True needs checkpoint_dir (where the run's last.pt is)")
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.strategy_spec = strategy
        self.loss_spec = loss
        self.optimizer_spec = optimizer
        self.scheduler_spec = scheduler
        self.weight_decay = weight_decay
        self.momentum = momentum
        self.precision = precision
        self.compile = compile
        self.channels_last = channels_last
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every = checkpoint_every
        self.resume = resume
        self.seed = seed
        self.callbacks = list(callbacks)
        self.device_spec = device
        self.num_workers = num_workers
        self.grad_clip = grad_clip
        self.labels = list(labels) if labels is not None else None
        self.progress = progress
        self.verbose = verbose
        self.handle_interrupt = handle_interrupt
        self.feature_cache = feature_cache
        self.feature_cache_dir = feature_cache_dir
        # run state, visible to callbacks
        self.model: nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: Any = None
        self.strategy: Any = None
        self.context = distributed.Context()
        self.epoch = 0
        self.step = 0
        self.global_step = 0
        self.history: list[dict[str, Any]] = []
        self._stop = False
        self._best = _Best()

    # ------------------------------------------------------------------ public

    def request_stop(self) -> None:
        """Finish the current step, write a checkpoint and return (``resume=True`` continues)."""
        self._stop = True

    def evaluate(self, model: nn.Module, data: Any) -> dict[str, Any]:
        self.context = context = distributed.setup(self.device_spec)
        try:
            model.to(context.device)
            loader = self._loader(batches.as_dataset(data), shuffle=False, pad=False, collate=batches.collate_of(data))
            return self._run_eval(model, self._loss_fn(), loader)
        finally:
            distributed.teardown(context)

    def fit(self, model: nn.Module, train: Any, val: Any = None) -> FitResult:
        self.context = context = distributed.setup(self.device_spec)
        try:
            with self._interrupt_handler():
                return self._fit(model, train, val)
        finally:
            distributed.teardown(context)

    # ------------------------------------------------------------------ the run

    def _fit(self, model: nn.Module, train: Any, val: Any) -> FitResult:
        context = self.context
        _seed_everything(self.seed + context.rank)
        self.model = model
        model.to(context.device)
        if self._use_channels_last(model):
            model.to(memory_format=torch.channels_last)
        self.strategy = _resolve_strategy(self.strategy_spec, model)
        if self.strategy is not None:
            self.strategy.setup(model)
        labels = self.labels or batches.labels_of(train)
        forward_model = eval_model = model
        if self._use_feature_cache(train, val):
            # the frozen backbone runs once over the data; every epoch trains the head on its output
            from .heads import get_head

            train, val = self._cached(model, train), (self._cached(model, val) if val is not None else None)
            forward_model = eval_model = get_head(model)[1]
        loss_fn = self._loss_fn()
        self.optimizer = self._build_optimizer(model)
        train_set = batches.SeededBatches(batches.as_dataset(train), self.seed)
        train_loader = self._loader(train_set, shuffle=True, pad=True, collate=batches.collate_of(train))
        val_loader = self._loader(batches.as_dataset(val), shuffle=False, pad=False, collate=batches.collate_of(val)) if val is not None else None
        steps_per_epoch = len(train_loader)
        self.scheduler = self._build_scheduler(self.optimizer, steps_per_epoch * max(self.epochs, 1))
        if self.compile:
            forward_model = torch.compile(forward_model)

        meter = Meter(context.device)
        best = self._best = _Best()
        state = self._load_resume_state()
        if state is not None:
            meter = self._restore(state, model, meter, best)
        else:
            self.epoch, self.step, self.global_step, self.history = 0, 0, 0, []
        if self.checkpoint_dir is not None and context.is_main:
            ckpt.remove_stale_temporaries(self.checkpoint_dir)

        for callback in self.callbacks:
            _call(callback, "on_fit_start", self)
        # replay the strategy's schedule up to the current epoch: a resumed run freezes what the original had frozen
        for past in range(min(self.epoch, self.epochs)):
            self._strategy_epoch_start(model, past)
        ddp_model, trainable = None, None
        stopped = False
        while self.epoch < self.epochs and not stopped:
            epoch = self.epoch
            self._strategy_epoch_start(model, epoch)
            if context.is_distributed:
                now_trainable = tuple(p.requires_grad for p in model.parameters())
                if now_trainable != trainable:  # DDP syncs only what was trainable when it was built
                    ddp_model, trainable = _wrap_ddp(forward_model, context), now_trainable
            runner = ddp_model if ddp_model is not None else forward_model
            for callback in self.callbacks:
                _call(callback, "on_epoch_start", self, epoch)
            train_set.epoch = epoch
            train_loader.sampler.set_position(epoch, self.step * self.batch_size)
            if self.step == 0:
                meter = Meter(context.device)
            started = time.perf_counter()
            if self._train_epoch(runner, loss_fn, train_loader, meter, steps_per_epoch):
                stopped = True  # inside the epoch
                self._save_checkpoint(model, meter)
                break
            metrics = {"epoch": epoch + 1}
            metrics.update({f"train_{k}": v for k, v in meter.compute(context).items()})
            if val_loader is not None:
                metrics.update({f"val_{k}": v for k, v in self._run_eval(eval_model, loss_fn, val_loader).items()})
            metrics["lr"] = self.optimizer.param_groups[0]["lr"]
            metrics["seconds"] = time.perf_counter() - started
            self.history.append(metrics)
            self.epoch, self.step = epoch + 1, 0
            if best.update(metrics):
                self._save_best(model, metrics, labels)
            self._log(f"epoch {epoch + 1}/{self.epochs}: {format_metrics(_summary(metrics))}")
            for callback in self.callbacks:
                _call(callback, "on_epoch_end", self, epoch, metrics)
            self._save_checkpoint(model, meter)
            stopped = distributed.broadcast_flag(self._stop, context) and self.epoch < self.epochs

        if stopped:
            where = f"; resume with resume=True from {self.checkpoint_dir}" if self.checkpoint_dir else ""
            self._log(f"stopped at epoch {self.epoch + 1}, step {self.step}{where}")
        result = self._result(model, labels, best, stopped)
        if result.confusion is not None and self.verbose and context.is_main and not stopped:
            self._log("confusion matrix (rows: true class):\n" + format_confusion(result.confusion, labels))
        for callback in self.callbacks:
            _call(callback, "on_fit_end", self, result)
        return result

    def _train_epoch(self, model: nn.Module, loss_fn: Callable, loader: DataLoader, meter: Meter,
                     steps_per_epoch: int) -> bool:
        """One pass over the training data from the current step; True when a stop was requested."""
        context, device = self.context, self.context.device
        model.train()
        autocast = self._autocast()
        channels_last = self._use_channels_last(self.model)
        bar = _progress(self.progress and context.is_main, steps_per_epoch, self.step,
                        f"epoch {self.epoch + 1}/{self.epochs}")
        try:
            for batch in loader:
                inputs, target = batches.split_batch(batches.to_device(batch, device, channels_last))
                with autocast:
                    output = batches.logits(batches.forward(model, inputs))
                    loss = loss_fn(output, target)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.grad_clip is not None:
                    nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], self.grad_clip)
                self.optimizer.step()
                if self.scheduler is not None:
                    self.scheduler.step()
                meter.update(loss, output, target)
                self.step += 1
                self.global_step += 1
                bar.update(1)
                if self.step % 10 == 1:
                    bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
                for callback in self.callbacks:
                    _call(callback, "on_step_end", self, self.step, loss)
                if self.checkpoint_every and self.step % self.checkpoint_every == 0 and self.step < steps_per_epoch:
                    self._save_checkpoint(self.model, meter)
                if distributed.broadcast_flag(self._stop, context) and self.step < steps_per_epoch:
                    self._stop = True
                    return True
        finally:
            bar.close()
        return False

    @torch.inference_mode()
    def _run_eval(self, model: nn.Module, loss_fn: Callable, loader: DataLoader) -> dict[str, Any]:
        was_training = model.training
        model.eval()
        meter = Meter(self.context.device)
        autocast = self._autocast()
        channels_last = self._use_channels_last(model)
        try:
            for batch in loader:
                inputs, target = batches.split_batch(batches.to_device(batch, self.context.device, channels_last))
                with autocast:
                    output = batches.logits(batches.forward(model, inputs))
                    loss = loss_fn(output, target)
                meter.update(loss.float(), output.float(), target)
        finally:
            model.train(was_training)
        return meter.compute(self.context)

    # ------------------------------------------------------------------ building blocks

    def _loader(self, dataset: Dataset, *, shuffle: bool, pad: bool, collate: Callable | None) -> DataLoader:
        context = self.context
        sampler = distributed.ResumableSampler(len(dataset), shuffle=shuffle, seed=self.seed, rank=context.rank,
                                               world_size=context.world_size, pad=pad)
        if len(dataset) == 0:
            raise ZooError("the dataset is empty: give at least one sample")
        # a last batch of one sample breaks BatchNorm in training; drop it rather than fail
        drop_last = shuffle and sampler.share() % self.batch_size == 1 and sampler.share() > 1
        return DataLoader(dataset, batch_size=self.batch_size, sampler=sampler, collate_fn=collate or default_collate,
                          num_workers=self.num_workers, drop_last=drop_last,
                          pin_memory=context.device.type == "cuda",
                          # its own generator: making an iterator must not draw from the global one,
                          # or a run resumed mid-epoch would see other dropout masks
                          generator=torch.Generator().manual_seed(self.seed))

    def _loss_fn(self) -> Callable[..., torch.Tensor]:
        if self.loss_spec == "cross_entropy":
            return nn.CrossEntropyLoss()
        if self.loss_spec == "mse":
            return nn.MSELoss()
        return self.loss_spec

    def _build_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        spec = self.optimizer_spec
        if isinstance(spec, torch.optim.Optimizer):
            return spec
        decay = self.weight_decay if self.weight_decay is not None else (0.01 if spec == "adamw" else 0.0)
        groups = _parameter_groups(model, self.lr, decay)
        if callable(spec) and not isinstance(spec, str):
            return spec(groups)
        if spec == "sgd":
            return torch.optim.SGD(groups, lr=self.lr, momentum=self.momentum, weight_decay=decay)
        if spec == "adam":
            return torch.optim.Adam(groups, lr=self.lr, weight_decay=decay)
        return torch.optim.AdamW(groups, lr=self.lr, weight_decay=decay)

    def _build_scheduler(self, optimizer: torch.optim.Optimizer, total_steps: int) -> Any:
        spec = self.scheduler_spec
        if spec is None or spec == "constant":
            return None
        if not isinstance(spec, str):
            return spec if hasattr(spec, "state_dict") and hasattr(spec, "step") else spec(optimizer)
        total = max(total_steps, 1)
        if spec == "cosine":
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
        if spec == "linear":
            return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / total))
        peak = [group["lr"] for group in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peak, total_steps=total + 1)

    def _autocast(self) -> contextlib.AbstractContextManager:
        device = self.context.device
        bf16 = self.precision == "bf16" or (
            self.precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported())
        if not bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def _use_channels_last(self, model: nn.Module | None) -> bool:
        if self.channels_last is not None:
            return bool(self.channels_last)
        return (self.context.device.type == "cuda" and model is not None
                and any(isinstance(m, nn.Conv2d) for m in model.modules()))

    def _use_feature_cache(self, train: Any, val: Any) -> bool:
        """The strategy allows it (frozen backbone) and the data is the same every epoch (no augmentation)."""
        if self.feature_cache is False or not getattr(self.strategy, "uses_feature_cache", False):
            return False
        fixed = [data for data in (train, val) if data is not None]
        if all(batches.data_fingerprint(data) is not None and batches.is_deterministic(data) for data in fixed):
            return True
        if self.feature_cache:
            raise InvalidArgumentError(
                "feature_cache=True needs data without random augmentation that can be identified: a zoo.data "
                "reader with augment=False, a TensorDataset, or a dataset with 'augments = False' and a 'fingerprint'")
        return False

    def _cached(self, model: nn.Module, data: Any) -> Dataset:
        from .feature_cache import cached_features

        dataset = batches.as_dataset(data)
        loader = DataLoader(dataset, batch_size=max(self.batch_size, 64), shuffle=False,
                            collate_fn=batches.collate_of(data) or default_collate, num_workers=self.num_workers)
        pairs = (batches.split_batch(batch) for batch in loader)  # only iterated when the cache misses
        cached = cached_features(model, pairs, data=batches.data_fingerprint(data),
                                 preprocessing=(getattr(dataset, "transform", None), repr(batches.collate_of(data))),
                                 cache_dir=self.feature_cache_dir, device=self.context.device)
        self._log(f"features {'read from' if cached.hit else 'computed and stored in'} {cached.path}")
        return TensorDataset(cached.features, cached.labels)

    def _strategy_epoch_start(self, model: nn.Module, epoch: int) -> None:
        if self.strategy is not None:
            self.strategy.on_epoch_start(model, epoch, self.epochs)

    # ------------------------------------------------------------------ checkpoints

    def _load_resume_state(self) -> dict[str, Any] | None:
        if not self.resume:
            return None
        path = Path(self.resume) if isinstance(self.resume, (str, Path)) else self.checkpoint_dir / ckpt.LAST
        if path.is_dir():
            path = path / ckpt.LAST
        if not path.exists() and self.resume is True:
            self._log(f"no checkpoint at {path} yet; starting from the beginning")
            return None
        state = ckpt.load(path)
        saved = state.get("config", {})
        for key, value in (("seed", self.seed), ("batch_size", self.batch_size), ("world_size", self.context.world_size)):
            if key in saved and saved[key] != value:
                raise ckpt.CheckpointError(
                    f"checkpoint {path} was written with {key}={saved[key]}, this run has {key}={value}; "
                    f"resume with the same {key} (an exact resume needs it) or start without resume")
        return state

    def _restore(self, state: dict[str, Any], model: nn.Module, meter: Meter, best: "_Best") -> Meter:
        model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        rng = state["rng"]
        ckpt.set_rng_state(rng[self.context.rank] if len(rng) == self.context.world_size else rng[0])
        self.epoch, self.step, self.global_step = state["epoch"], state["step"], state["global_step"]
        self.history = list(state["history"])
        best.load(state.get("best"))
        if state.get("meter") is not None and self.step > 0:
            saved = state["meter"]
            meter.loss_sum.copy_(saved["loss_sum"])
            meter.count.copy_(saved["count"])
            if saved.get("confusion") is not None:
                meter.confusion = saved["confusion"].to(meter.device)
        self._log(f"resumed from epoch {self.epoch + 1}, step {self.step}")
        return meter

    def _save_checkpoint(self, model: nn.Module, meter: Meter) -> None:
        if self.checkpoint_dir is None:
            return
        context = self.context
        rng = [ckpt.rng_state()]
        if context.is_distributed:
            gathered: list[Any] = [None] * context.world_size
            torch.distributed.all_gather_object(gathered, rng[0])
            rng = gathered
        if context.is_main:
            state = {
                "format": CHECKPOINT_FORMAT,
                "epoch": self.epoch, "step": self.step, "global_step": self.global_step,
                "model": model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
                "rng": rng,
                "history": self.history,
                "best": self._best.state(),
                "meter": {"loss_sum": meter.loss_sum.cpu(), "count": meter.count.cpu(),
                          "confusion": meter.confusion.cpu() if meter.confusion is not None else None},
                "config": {"seed": self.seed, "batch_size": self.batch_size, "world_size": context.world_size,
                           "epochs": self.epochs, "lr": self.lr},
            }
            ckpt.save(_plain(state), self.checkpoint_dir / ckpt.LAST)
        distributed.barrier(context)

    def _save_best(self, model: nn.Module, metrics: dict[str, Any], labels: list[str] | None) -> None:
        if self.checkpoint_dir is None:
            return
        best = self._best
        if self.context.is_main:
            info = {"epoch": metrics["epoch"], "monitor": best.monitor, "value": best.value,
                    "metrics": _summary(metrics), "labels": labels}
            ckpt.save_best(_unwrap(model), self.checkpoint_dir / ckpt.BEST, extra=info, labels=labels)
        distributed.barrier(self.context)

    def _result(self, model: nn.Module, labels: list[str] | None, best: "_Best", stopped: bool) -> FitResult:
        last = self.history[-1] if self.history else {}
        confusion = last.get("val_confusion", last.get("train_confusion"))
        best_dir = None
        if self.checkpoint_dir is not None and (self.checkpoint_dir / ckpt.BEST).is_dir():
            best_dir = self.checkpoint_dir / ckpt.BEST
        checkpoint = self.checkpoint_dir / ckpt.LAST if self.checkpoint_dir is not None else None
        return FitResult(model=model, history=self.history, confusion=confusion, labels=labels, monitor=best.monitor,
                         best_value=best.value, best_epoch=best.epoch, best_dir=best_dir, checkpoint=checkpoint,
                         stopped=stopped)

    # ------------------------------------------------------------------ small helpers

    def _log(self, message: str) -> None:
        if self.verbose and self.context.is_main:
            print(message, flush=True)

    @contextlib.contextmanager
    def _interrupt_handler(self):
        """First Ctrl-C: finish the step, checkpoint and return; a second one stops at once."""
        if not self.handle_interrupt or threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_interrupt(signum, frame):
            if self._stop:
                raise KeyboardInterrupt
            self._log("\ninterrupt: stopping after this step (press Ctrl-C again to stop at once)")
            self._stop = True

        previous = signal.signal(signal.SIGINT, on_interrupt)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


class _Best:
    """The monitored metric's best value so far: validation accuracy, else validation loss, else training loss."""

    def __init__(self) -> None:
        self.monitor: str | None = None
        self.value: float | None = None
        self.epoch: int | None = None

    def update(self, metrics: dict[str, Any]) -> bool:
        monitor = next((k for k in ("val_accuracy", "val_loss", "train_loss") if k in metrics), None)
        if monitor is None:
            return False
        value = float(metrics[monitor])
        if math.isnan(value):
            return False
        higher = monitor.endswith("accuracy")
        if self.value is None or (value > self.value if higher else value < self.value):
            self.monitor, self.value, self.epoch = monitor, value, metrics["epoch"]
            return True
        return False

    def state(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "value": self.value, "epoch": self.epoch}

    def load(self, state: dict[str, Any] | None) -> None:
        if state:
            self.monitor, self.value, self.epoch = state["monitor"], state["value"], state["epoch"]


# ---------------------------------------------------------------------------- model helpers


def _resolve_strategy(spec: Any, model: nn.Module) -> Any:
    """The strategy object: the one given, or one by name.

    Without one, a zoo model that is wholly trainable gets the default recipe (``freeze_unfreeze``);
    a model with frozen parts (``zoo.create(..., freeze=...)``, a recipe such as ``resnet_ft``) and
    any other module keep their freeze state: what is trainable trains.
    """
    from ..factory import CARD_ATTRIBUTE

    if spec is None:
        if getattr(model, CARD_ATTRIBUTE, None) is None or not all(p.requires_grad for p in model.parameters()):
            return None
        spec = "freeze_unfreeze"
    from .strategies import get_strategy

    return get_strategy(spec)


def _parameter_groups(model: nn.Module, lr: float, weight_decay: float) -> list[dict[str, Any]]:
    """Every parameter, trainable now or not: a later unfreeze only flips ``requires_grad``."""
    from ..factory import CARD_ATTRIBUTE

    card = getattr(model, CARD_ATTRIBUTE, None)
    if card is not None and card.layer_groups:
        try:
            from .groups import param_groups
        except ImportError:
            param_groups = None
        if param_groups is not None:
            return param_groups(model, lr, weight_decay=weight_decay)
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.dim() <= 1 else decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return [g for g in groups if g["params"]]


def _wrap_ddp(model: nn.Module, context: distributed.Context) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [context.device] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def _unwrap(model: nn.Module) -> nn.Module:
    model = getattr(model, "module", model) if type(model).__name__ == "DistributedDataParallel" else model
    return getattr(model, "_orig_mod", model)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2 ** 32)
    except ImportError:
        pass


def _call(callback: Any, hook: str, *args: Any) -> None:
    method = getattr(callback, hook, None)
    if method is not None:
        method(*args)


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if not k.endswith("confusion") and not k.endswith("samples")}


def _plain(value: Any) -> Any:
    """Checkpoint contents as types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_plain(v) for v in value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _progress(enabled: bool, total: int, initial: int, description: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=description, leave=False, dynamic_ncols=True, mininterval=0.5)


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...
