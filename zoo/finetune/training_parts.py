"""What the training options add to a run, as one part the trainer holds: the fp16 gradient scaler,
the weight average (EMA), the batch mixing (MixUp/CutMix) and early stopping.

Each is None when its option is off. Their state goes into every checkpoint as one entry each
(``scaler``, ``ema``, ``early_stopping``), and a checkpoint without an entry (written before the
run had that part) leaves the part as it starts.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .config import TrainerConfig
from .early_stopping import EarlyStopping
from .ema import WeightAverage
from .mixing import Mixing, build_mixing
from .stepping import make_scaler


@dataclass
class TrainingParts:
    scaler: torch.amp.GradScaler | None = None
    ema: WeightAverage | None = None
    mix: Mixing | None = None
    early_stopping: EarlyStopping | None = None
    ema_eval: bool = False

    @classmethod
    def build(cls, config: TrainerConfig, model: nn.Module, device: torch.device,
              num_classes: int | None) -> TrainingParts:
        """The parts `config` asks for, for `model` (placed on `device`) predicting `num_classes` classes."""
        stopping = (EarlyStopping(config.early_stopping_patience, float(config.min_delta), config.monitor,
                                  config.monitor_mode) if config.early_stopping_patience is not None else None)
        return cls(scaler=make_scaler(config.precision, device),
                   ema=WeightAverage(model, float(config.ema_decay)) if config.ema_decay is not None else None,
                   mix=build_mixing(config.mixup_alpha, config.cutmix_alpha, num_classes),
                   early_stopping=stopping, ema_eval=config.ema_eval)

    def measured_weights(self) -> contextlib.AbstractContextManager[Any]:
        """The model holds the weights a run measures and saves inside the block: the average with
        ``ema_eval``, else its own."""
        return self.ema.applied() if self.ema is not None and self.ema_eval else contextlib.nullcontext()

    def should_stop_early(self) -> bool:
        return self.early_stopping is not None and self.early_stopping.should_stop

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "early_stopping": self.early_stopping.state_dict() if self.early_stopping is not None else None}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.scaler is not None and state.get("scaler") is not None:
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])
        if self.early_stopping is not None:
            self.early_stopping.load_state_dict(state.get("early_stopping"))
