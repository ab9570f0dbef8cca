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
import numbers
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

from .._progress import progress_bar
from ..errors import InvalidArgumentError, ZooError
from . import batches
from . import checkpoint as ckpt
from . import distributed, run_dir
from .checkpoint import CheckpointError, NonFiniteError
from .metrics import Meter, format_confusion, format_metrics

PRECISIONS = ("auto", "bf16", "fp32")
LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULERS = ("cosine", "onecycle", "linear", "constant")
CHECKPOINT_FORMAT = 1
CHECKPOINT_KEYS = ("format", "epoch", "step", "global_step", "model", "optimizer", "rng", "history")
# what a resumed run takes over from its checkpoint unchanged (epochs alone may differ)
RESUME_KEEPS = ("seed", "batch_size", "world_size", "lr", "optimizer", "scheduler", "strategy")
LOSS_CHECK_EVERY = 10  # steps between reads of the losses (the progress bar reads one as often)


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
        _require("epochs", epochs, _is_int(epochs) and epochs >= 0, "a whole number of at least 0")
        _require("batch_size", batch_size, _is_int(batch_size) and batch_size >= 1, "a whole number of at least 1")
        _require("lr", lr, _is_real(lr) and math.isfinite(lr) and lr > 0, "a positive finite number")
        _require("num_workers", num_workers, _is_int(num_workers) and num_workers >= 0, "a whole number of at least 0")
        _require("checkpoint_every", checkpoint_every,
                 checkpoint_every is None or (_is_int(checkpoint_every) and checkpoint_every >= 1),
                 "None or a whole number of at least 1")
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
        self._losses = _NonFiniteLosses()

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
            with self._interrupt_handler(), self._own_checkpoint_dir():
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
        self._losses = _NonFiniteLosses()
        resume_from = self._load_resume_state(model)
        if resume_from is not None:
            meter = self._restore(*resume_from, model, meter, best)
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
            self._check_numerics(model)
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
                self._losses.record(loss, self.epoch + 1, self.step)
                if self._losses.pending >= LOSS_CHECK_EVERY:
                    self._check_losses()
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

    def _load_resume_state(self, model: nn.Module) -> tuple[dict[str, Any], Path] | None:
        """The checkpoint to resume from and its path, checked against this run before anything is loaded."""
        if not self.resume:
            return None
        if isinstance(self.resume, (str, Path)):
            path = Path(self.resume)
            path = path / ckpt.LAST if path.is_dir() else path
        else:
            path = self.checkpoint_dir / ckpt.LAST
        if not path.exists() and self.resume is True:
            self._log(f"no checkpoint at {path} yet; starting from the beginning")
            return None
        state = ckpt.load(path)
        _check_checkpoint(state, path)
        saved = state.get("config", {})
        config = self._run_config(model)
        for key in RESUME_KEEPS:
            if key in saved and saved[key] != config[key]:
                raise CheckpointError(
                    f"checkpoint {path} was written with {key}={saved[key]}, this run has {key}={config[key]}; "
                    f"resume with the same {key} (a resumed run keeps {', '.join(RESUME_KEEPS)}; only epochs may "
                    "change) or start without resume")
        _check_same_model(saved.get("model"), config["model"], state["model"], model.state_dict(), path)
        if saved.get("epochs") not in (None, self.epochs):
            self._log(f"the checkpoint's run had epochs={saved['epochs']}; this run goes on to epochs={self.epochs} "
                      "(the learning-rate schedule follows the new number)")
        return state, path

    def _restore(self, state: dict[str, Any], path: Path, model: nn.Module, meter: Meter, best: "_Best") -> Meter:
        try:
            model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state.get("scheduler") is not None:
                self.scheduler.load_state_dict(state["scheduler"])
            rng = state["rng"]
            ckpt.set_rng_state(rng[self.context.rank] if len(rng) == self.context.world_size else rng[0])
        except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"checkpoint {path} does not fit this run ({reason}); start without resume") from exc
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

    def _run_config(self, model: nn.Module) -> dict[str, Any]:
        """What the checkpoint records about the run, for a resume to compare."""
        return {"seed": self.seed, "batch_size": self.batch_size, "world_size": self.context.world_size,
                "epochs": self.epochs, "lr": self.lr, "optimizer": _spec_name(self.optimizer_spec),
                "scheduler": _spec_name(self.scheduler_spec or "constant"),
                "strategy": getattr(self.strategy, "name", None), "model": _fingerprint(model)}

    def _save_checkpoint(self, model: nn.Module, meter: Meter) -> None:
        if self.checkpoint_dir is None:
            return
        self._check_numerics(model)
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
                "config": self._run_config(model),
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

    def _own_checkpoint_dir(self) -> contextlib.AbstractContextManager:
        """The main process owns the checkpoint folder for the run: a second run on it is refused."""
        if self.checkpoint_dir is None or not self.context.is_main:
            return contextlib.nullcontext()
        return run_dir.hold(self.checkpoint_dir)

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
        kept = self.checkpoint_dir / ckpt.LAST if self.checkpoint_dir is not None else None
        advice = (f"lower the learning rate (lr={self.lr:g}; --lr on the command line) or check the data for "
                  "extreme values")
        return advice + (f"; the last good checkpoint is kept in {kept}" if kept is not None and kept.exists() else "")

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


class _NonFiniteLosses:
    """Watches the training loss for NaN and Inf without a synchronisation per step.

    Losses stay on the device and are read every `LOSS_CHECK_EVERY` steps and before each save.
    A run stops once `patience` losses in a row were not finite. Without a gradient scaler (fp32
    and bf16 train without one) that is the first: its gradients have already reached the weights.
    A scaler skips inf steps as part of its work, so with one `patience` counts skipped steps.
    """

    def __init__(self, patience: int = 1) -> None:  # 1: no gradient scaler today
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


def _spec_name(spec: Any) -> str | None:
    """A name for an optimizer, scheduler or strategy option that is the same in every run."""
    if spec is None or isinstance(spec, str):
        return spec
    if isinstance(spec, (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)):
        return type(spec).__name__.lower()
    return getattr(spec, "__qualname__", type(spec).__name__)


def _fingerprint(model: nn.Module) -> dict[str, Any]:
    """Which model a checkpoint belongs to: its card's name, builder and class count (or its class)."""
    from ..factory import CARD_ATTRIBUTE

    card = getattr(_unwrap(model), CARD_ATTRIBUTE, None)
    if card is None:
        return {"name": type(_unwrap(model)).__name__, "builder": None, "num_classes": None}
    return {"name": card.name, "builder": card.builder, "num_classes": card.num_classes}


def _describe(fingerprint: Mapping[str, Any]) -> str:
    classes = fingerprint.get("num_classes")
    return f"{fingerprint.get('name')}" + (f" with {classes} classes" if classes is not None else "")


def _check_checkpoint(state: Any, path: Path) -> None:
    """A zoo training checkpoint of this format, with every part a resume reads."""
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a zoo training checkpoint (it holds a {type(state).__name__}); "
                              "point resume at a last.pt written by zoo, or start without resume")
    missing = [key for key in CHECKPOINT_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path} is not a complete zoo training checkpoint (it lacks {', '.join(missing)}); "
                              "point resume at a last.pt written by zoo, or start without resume")
    if state["format"] != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {state['format']!r}, this zoo reads format "
                              f"{CHECKPOINT_FORMAT}; start without resume")
    if not isinstance(state["model"], Mapping):
        raise CheckpointError(f"{path} holds no model weights (its 'model' is a {type(state['model']).__name__}); "
                              "point resume at a last.pt written by zoo, or start without resume")


def _check_same_model(saved: Mapping[str, Any] | None, current: Mapping[str, Any], saved_state: Mapping[str, Any],
                      state: Mapping[str, Any], path: Path) -> None:
    """The checkpoint was written for this model: same card, class count and weight names and shapes."""
    differs = saved is not None and any(key in saved and saved[key] != current[key] for key in current)
    mismatch = _state_mismatch(saved_state, state)
    if differs or mismatch:
        written = _describe(saved) if differs else f"other weights ({mismatch})"
        raise CheckpointError(f"checkpoint {path} was written for {written}, this run trains {_describe(current)}; "
                              "resume with the same model and classes, or start without resume in another folder")


def _state_mismatch(saved: Mapping[str, Any], current: Mapping[str, torch.Tensor]) -> str | None:
    extra, missing = sorted(set(saved) - set(current)), sorted(set(current) - set(saved))
    if extra or missing:
        name = (extra or missing)[0]
        return f"{name!r} is {'only in the checkpoint' if extra else 'missing from the checkpoint'}"
    for name, tensor in current.items():
        shape = tuple(getattr(saved[name], "shape", ()))
        if shape != tuple(tensor.shape):
            return f"{name!r} has shape {list(shape)} there and {list(tensor.shape)} here"
    return None


def _require(name: str, value: Any, ok: bool, what: str) -> None:
    if not ok:
        raise InvalidArgumentError(f"{name} must be {what}, got {value!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


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


def _progress(enabled: bool, total: int, initial: int, description: str) -> Any:
    return progress_bar(enabled=enabled, total=total, initial=initial, description=description, leave=False,
                        dynamic_ncols=True, mininterval=0.5)
