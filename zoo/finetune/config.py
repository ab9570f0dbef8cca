"""`TrainerConfig`: a training run's options as one validated, read-only value.

Built from the keyword options of ``Trainer(...)`` and ``fit(...)`` (or directly, to reuse one
configuration for several runs). Every field is checked when the configuration is made, the way
card fields are: its type and its range, and a wrong value is an `InvalidArgumentError` naming the
field (``epochs="3"`` gives ``epochs must be a whole number of at least 0, got '3'``); an unknown
option names the closest one.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import InvalidArgumentError
from ._checks import (
    flag,
    is_int,
    is_real,
    non_negative_number,
    one_of,
    positive_number,
    require,
    whole_number,
)
from .callbacks import warn_unknown_hooks
from .loggers import check_log
from .options import LOSSES, MONITOR_MODES, OPTIMIZERS, PRECISIONS, SCHEDULERS, STRATEGY_NAMES
from .strategies import Strategy
from .task_metrics import check_metrics

# What each option takes besides a name (the extension points a program fills in)
ParamGroups = list[dict[str, Any]]
LossSpec = str | Callable[..., torch.Tensor]
OptimizerSpec = str | torch.optim.Optimizer | Callable[[ParamGroups], torch.optim.Optimizer]
SchedulerSpec = str | torch.optim.lr_scheduler.LRScheduler | Callable[[torch.optim.Optimizer], Any] | None
StrategySpec = str | Strategy | None
PathSpec = str | os.PathLike[str]


@dataclass(frozen=True)
class TrainerConfig:
    """The options of a training run (see `zoo.finetune.fit` for what each one does)."""

    epochs: int = 1
    lr: float = 1e-3
    batch_size: int = 32
    strategy: StrategySpec = None
    loss: LossSpec = "cross_entropy"
    optimizer: OptimizerSpec = "adamw"
    scheduler: SchedulerSpec = "cosine"
    weight_decay: float | None = None
    momentum: float = 0.9
    precision: str = "auto"
    compile: bool = False
    channels_last: bool | None = None
    checkpoint_dir: PathSpec | None = None
    checkpoint_every: int | None = None
    resume: bool | PathSpec = False
    seed: int = 0
    callbacks: Sequence[object] = ()
    device: str | torch.device | None = None
    num_workers: int = 0
    grad_clip: float | None = None
    labels: Sequence[str] | None = None
    progress: bool = True
    verbose: bool = True
    handle_interrupt: bool = True
    feature_cache: bool | None = None
    feature_cache_dir: PathSpec | None = None
    accumulate_grad_batches: int = 1
    warmup_steps: int | None = None
    warmup_epochs: float | None = None
    ema_decay: float | None = None
    ema_eval: bool = False
    early_stopping_patience: int | None = None
    min_delta: float = 0.0
    monitor: str | None = None
    monitor_mode: str | None = None
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    log: Sequence[object] = ()
    metrics: Sequence[object] | None = None
    report: bool = True
    sharding: str | None = None

    def __post_init__(self) -> None:
        _check_numbers(self)
        _check_choices(self)
        _check_run_folder(self)
        _check_switches(self)
        _check_training_options(self)
        _check_collections(self)
        _check_sharding(self)
        # plain, read-only forms: a Path for folders, tuples for sequences
        if self.checkpoint_dir is not None:
            object.__setattr__(self, "checkpoint_dir", Path(self.checkpoint_dir))
        object.__setattr__(self, "callbacks", tuple(self.callbacks))
        object.__setattr__(self, "log", tuple(self.log))
        if self.labels is not None:
            object.__setattr__(self, "labels", tuple(self.labels))
        if self.metrics is not None:
            object.__setattr__(self, "metrics", tuple(self.metrics))

    @property
    def run_folder(self) -> Path | None:
        """`checkpoint_dir` as a Path (None without one)."""
        return Path(self.checkpoint_dir) if self.checkpoint_dir is not None else None


FIELDS = tuple(f.name for f in dataclasses.fields(TrainerConfig))
# the options of accumulation, warm-up, EMA, early stopping, the monitor, label smoothing and mixing
TRAINING_OPTIONS = ("accumulate_grad_batches", "warmup_steps", "warmup_epochs", "ema_decay", "ema_eval",
                    "early_stopping_patience", "min_delta", "monitor", "monitor_mode", "label_smoothing",
                    "mixup_alpha", "cutmix_alpha")


def make_config(config: TrainerConfig | None = None, options: Mapping[str, Any] | None = None) -> TrainerConfig:
    """`config` (or the defaults) with `options` applied; an option the trainer does not have is an error."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(FIELDS))
    if unknown:
        close = difflib.get_close_matches(unknown[0], FIELDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InvalidArgumentError(
            f"the trainer has no option {unknown[0]!r}; {hint}its options are {', '.join(FIELDS)}")
    if config is not None and not isinstance(config, TrainerConfig):
        raise InvalidArgumentError(f"config must be a zoo.finetune.TrainerConfig, got {type(config).__name__}")
    if config is None:
        return TrainerConfig(**options)
    return dataclasses.replace(config, **options) if options else config


def _check_numbers(config: TrainerConfig) -> None:
    whole_number("epochs", config.epochs, 0)
    whole_number("batch_size", config.batch_size, 1)
    whole_number("num_workers", config.num_workers, 0)
    whole_number("checkpoint_every", config.checkpoint_every, 1, optional=True)
    require("seed", config.seed, is_int(config.seed), "a whole number")
    positive_number("lr", config.lr)
    positive_number("grad_clip", config.grad_clip, optional=True)
    non_negative_number("weight_decay", config.weight_decay, optional=True)
    non_negative_number("momentum", config.momentum)


def _check_choices(config: TrainerConfig) -> None:
    one_of("precision", config.precision, PRECISIONS)
    if not callable(config.loss):
        one_of("loss", config.loss, LOSSES, also=" or a callable")
    if not isinstance(config.optimizer, torch.optim.Optimizer) and not callable(config.optimizer):
        one_of("optimizer", config.optimizer, OPTIMIZERS, also=", an optimizer or a function")
    scheduler = config.scheduler
    if scheduler is not None and not is_scheduler(scheduler) and not callable(scheduler):
        one_of("scheduler", scheduler, SCHEDULERS, also=", None, a scheduler or a function")
    strategy = config.strategy
    if strategy is not None and not isinstance(strategy, Strategy):
        one_of("strategy", strategy, STRATEGY_NAMES, also=", None or a zoo.finetune.Strategy")
    device = config.device
    require("device", device, device is None or isinstance(device, (str, torch.device)),
            "None, a device name such as 'cuda:0', or a torch.device")


def _check_training_options(config: TrainerConfig) -> None:
    """Accumulation, warm-up, EMA, early stopping, the monitored metric, label smoothing and mixing."""
    whole_number("accumulate_grad_batches", config.accumulate_grad_batches, 1)
    every, accumulate = config.checkpoint_every, config.accumulate_grad_batches
    if every is not None and is_int(accumulate) and accumulate > 1 and every % accumulate:
        raise InvalidArgumentError(f"checkpoint_every={every} must be a multiple of accumulate_grad_batches="
                                   f"{accumulate}: checkpoints are written where an optimizer step ends a window")
    whole_number("warmup_steps", config.warmup_steps, 0, optional=True)
    non_negative_number("warmup_epochs", config.warmup_epochs, optional=True)
    if config.warmup_steps is not None and config.warmup_epochs is not None:
        raise InvalidArgumentError("warmup_steps and warmup_epochs are exclusive: give one of them")
    if has_warmup(config) and not (config.scheduler is None or isinstance(config.scheduler, str)):
        raise InvalidArgumentError(f"warm-up works with the built-in schedulers ({', '.join(SCHEDULERS)} or None); "
                                   "build it into your own scheduler, or drop warmup_steps/warmup_epochs")
    ema = config.ema_decay
    require("ema_decay", ema, ema is None or (is_real(ema) and 0 < ema < 1), "None or a number between 0 and 1")
    if config.ema_eval and ema is None:
        raise InvalidArgumentError("ema_eval=True needs ema_decay (e.g. 0.999): without it there is no average")
    whole_number("early_stopping_patience", config.early_stopping_patience, 1, optional=True)
    non_negative_number("min_delta", config.min_delta)
    if config.min_delta and config.early_stopping_patience is None:
        raise InvalidArgumentError("min_delta goes with early_stopping_patience (it is the smallest change that "
                                   "counts as an improvement); give both or neither")
    monitor = config.monitor
    require("monitor", monitor, monitor is None or (isinstance(monitor, str) and monitor.startswith(
        ("train_", "val_"))), "None or an epoch metric's name, such as 'val_loss' or 'val_accuracy'")
    if config.monitor_mode is not None:
        one_of("monitor_mode", config.monitor_mode, MONITOR_MODES, also=" or None")
    smoothing = config.label_smoothing
    require("label_smoothing", smoothing, is_real(smoothing) and 0 <= smoothing < 1, "a number from 0 up to 1 (not 1)")
    if smoothing and config.loss != "cross_entropy":
        raise InvalidArgumentError(f"label_smoothing goes with loss='cross_entropy', not loss={config.loss!r}")
    for name in ("mixup_alpha", "cutmix_alpha"):
        non_negative_number(name, getattr(config, name))
    if (config.mixup_alpha or config.cutmix_alpha) and config.loss == "mse":
        raise InvalidArgumentError("mixup_alpha and cutmix_alpha mix class targets: they go with "
                                   "loss='cross_entropy' (or a loss of your own that takes soft targets), not 'mse'")


def has_warmup(config: TrainerConfig) -> bool:
    """Whether the run warms its learning rate up (a warm-up of 0 steps or epochs is none)."""
    return bool(config.warmup_steps) or bool(config.warmup_epochs)


def _check_run_folder(config: TrainerConfig) -> None:
    for name in ("checkpoint_dir", "feature_cache_dir"):
        value = getattr(config, name)
        require(name, value, value is None or _is_path(value), "None or a folder path")
    resume = config.resume
    require("resume", resume, isinstance(resume, bool) or _is_path(resume), "True, False or a checkpoint path")
    if resume is True and config.checkpoint_dir is None:
        raise InvalidArgumentError("resume=True needs checkpoint_dir (where the run's last.pt is)")


def _check_switches(config: TrainerConfig) -> None:
    for name in ("compile", "progress", "verbose", "handle_interrupt", "ema_eval", "report"):
        flag(name, getattr(config, name))
    flag("channels_last", config.channels_last, optional=True)
    flag("feature_cache", config.feature_cache, optional=True)


def _check_collections(config: TrainerConfig) -> None:
    callbacks, labels = config.callbacks, config.labels
    require("callbacks", callbacks, _is_sequence(callbacks), "a list of callbacks (objects with on_* hook methods)")
    require("labels", labels, labels is None or _is_sequence(labels), "None or a list of class names")
    warn_unknown_hooks(callbacks)
    check_log(config.log)
    check_metrics(config.metrics)


SHARDINGS = ("fsdp",)  # zoo.finetune.sharding does it; named here without importing FSDP


def _check_sharding(config: TrainerConfig) -> None:
    """``sharding="fsdp"`` and the options it does not go with."""
    if config.sharding is None:
        return
    one_of("sharding", config.sharding, SHARDINGS, also=" or None")
    if config.ema_decay is not None:
        raise InvalidArgumentError("ema_decay cannot go with sharding='fsdp': the weight average would be a whole "
                                   "copy of the model on every process; drop one of them")
    if config.feature_cache:
        raise InvalidArgumentError("feature_cache=True cannot go with sharding='fsdp' (a frozen backbone is not "
                                   "sharded); drop one of them")


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike)) and str(value) != ""


def _is_sequence(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def is_scheduler(value: object) -> bool:
    """A scheduler object (it steps and has state), not a function that makes one."""
    return hasattr(value, "state_dict") and hasattr(value, "step")

