"""What a training checkpoint holds, and the checks before a run resumes from one.

A checkpoint (``last.pt``, format `CHECKPOINT_FORMAT`) records where the run stands (epoch, step),
everything that changes as it trains (model, optimizer, scheduler and warm-up, random generators,
the partial epoch's metrics, the best-model tracker, the early-stopping counters, the fp16
gradient scaler, the weight average and every stateful callback) and the run's options
(`run_config`). A resume is refused before anything is loaded when the checkpoint is not a whole
zoo checkpoint, was written for another model, or with other options than those in `RESUME_KEEPS`.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..cards import card_or_none
from . import checkpoint as ckpt
from .checkpoint import CheckpointError, unwrap_ddp_and_compile
from .config import TrainerConfig
from .metrics import Meter
from .optim import spec_name

CHECKPOINT_FORMAT = 1
CHECKPOINT_KEYS = ("format", "epoch", "step", "global_step", "model", "optimizer", "rng", "history")
# what a resumed run takes over from its checkpoint unchanged (epochs alone may differ)
# the training options recorded as they are (checkpoints written before they existed lack them: not compared)
TRAINING_KEEPS = ("accumulate_grad_batches", "warmup_steps", "warmup_epochs", "precision", "ema_decay", "monitor",
                  "monitor_mode", "label_smoothing", "mixup_alpha", "cutmix_alpha")
RESUME_KEEPS = ("seed", "batch_size", "world_size", "lr", "optimizer", "scheduler", "strategy", "sharding",
                *TRAINING_KEEPS)


def resume_path(config: TrainerConfig) -> Path | None:
    """The checkpoint `config.resume` points at: a file, ``last.pt`` in a folder, or in the run folder."""
    resume = config.resume
    if resume is False:
        return None
    if resume is True:
        assert config.run_folder is not None  # the configuration requires one
        return config.run_folder / ckpt.LAST
    path = Path(resume)
    return path / ckpt.LAST if path.is_dir() else path


def run_config(config: TrainerConfig, model: nn.Module, world_size: int, strategy: object) -> dict[str, Any]:
    """What the checkpoint records about the run, for a resume to compare."""
    return {"seed": config.seed, "batch_size": config.batch_size, "world_size": world_size,
            "epochs": config.epochs, "lr": config.lr, "optimizer": spec_name(config.optimizer),
            "scheduler": spec_name(config.scheduler or "constant"),
            "strategy": getattr(strategy, "name", None), "sharding": config.sharding, "model": fingerprint(model),
            **{key: getattr(config, key) for key in TRAINING_KEEPS}}


def check_resumable(state: Any, path: Path, current: Mapping[str, Any],
                    model_state: Mapping[str, torch.Tensor]) -> None:
    """`state` is a whole zoo checkpoint, written for this model and with this run's options."""
    check_checkpoint(state, path)
    saved = state.get("config", {})
    for key in RESUME_KEEPS:
        if key in saved and saved[key] != current[key]:
            raise CheckpointError(
                f"checkpoint {path} was written with {key}={saved[key]}, this run has {key}={current[key]}; "
                f"resume with the same {key} (a resumed run keeps {', '.join(RESUME_KEEPS)}; only epochs may "
                "change) or start without resume")
    check_same_model(saved.get("model"), current["model"], state["model"], model_state, path)


def check_checkpoint(state: Any, path: Path) -> None:
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


def check_same_model(saved: Mapping[str, Any] | None, current: Mapping[str, Any], saved_state: Mapping[str, Any],
                     state: Mapping[str, torch.Tensor], path: Path) -> None:
    """The checkpoint was written for this model: same card, class count and weight names and shapes."""
    differs = saved is not None and any(key in saved and saved[key] != current[key] for key in current)
    mismatch = state_mismatch(saved_state, state)
    if differs or mismatch:
        written = describe(saved) if differs and saved is not None else f"other weights ({mismatch})"
        raise CheckpointError(f"checkpoint {path} was written for {written}, this run trains {describe(current)}; "
                              "resume with the same model and classes, or start without resume in another folder")


def state_mismatch(saved: Mapping[str, Any], current: Mapping[str, torch.Tensor]) -> str | None:
    """The first weight that is only on one side or differs in shape, in words (None when they fit)."""
    extra, missing = sorted(set(saved) - set(current)), sorted(set(current) - set(saved))
    if extra or missing:
        name = (extra or missing)[0]
        return f"{name!r} is {'only in the checkpoint' if extra else 'missing from the checkpoint'}"
    for name, tensor in current.items():
        shape = tuple(getattr(saved[name], "shape", ()))
        if shape != tuple(tensor.shape):
            return f"{name!r} has shape {list(shape)} there and {list(tensor.shape)} here"
    return None


def fingerprint(model: nn.Module) -> dict[str, Any]:
    """Which model a checkpoint belongs to: its card's name, builder and class count (or its class)."""
    bare = unwrap_ddp_and_compile(model)
    card = card_or_none(bare)
    if card is None:
        return {"name": type(bare).__name__, "builder": None, "num_classes": None}
    return {"name": card.name, "builder": card.builder, "num_classes": card.num_classes}


def describe(fingerprint: Mapping[str, Any]) -> str:
    classes = fingerprint.get("num_classes")
    return f"{fingerprint.get('name')}" + (f" with {classes} classes" if classes is not None else "")


def meter_state(meter: Meter) -> dict[str, Any]:
    """The partial epoch's sums, so a run resumed mid-epoch reports the whole epoch."""
    return {"loss_sum": meter.loss_sum.cpu(), "count": meter.count.cpu(),
            "confusion": meter.confusion.cpu() if meter.confusion is not None else None}


def restore_meter(meter: Meter, saved: Mapping[str, Any]) -> None:
    meter.loss_sum.copy_(saved["loss_sum"])
    meter.count.copy_(saved["count"])
    if saved.get("confusion") is not None:
        meter.confusion = saved["confusion"].to(meter.device)


def plain(value: Any) -> Any:
    """Checkpoint contents as types ``torch.load(weights_only=True)`` accepts."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(plain(v) for v in value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def rank_rng(rng: list[Any], rank: int, world_size: int) -> Any:
    """This process's saved generator states (a run resumed on fewer processes takes the first's)."""
    return rng[rank] if len(rng) == world_size else rng[0]
