"""The monitored metric: which epoch metric chooses the best model and drives early stopping.

By default it follows the task: validation accuracy (higher is better) when the run measures
one, else validation loss, else training loss (lower is better). A user names any metric of
an epoch's history (``monitor="val_loss"``) and, when its name does not say, whether higher or
lower is better (``monitor_mode="max"``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgumentError

DEFAULT_MONITORS = ("val_accuracy", "val_loss", "train_loss")  # the first present is watched
# a metric whose name has one of these parts is better when higher (accuracy, top5_accuracy, macro_f1, r2, ...)
HIGHER_IS_BETTER = frozenset({"accuracy", "f1", "precision", "recall", "r2", "auc", "ap", "map", "iou", "dice"})


def default_mode(name: str) -> str:
    """``"max"`` for metrics that are better higher (by their name), ``"min"`` for losses and errors."""
    parts = set(name.lower().split("_"))
    return "max" if parts & HIGHER_IS_BETTER else "min"


@dataclass(frozen=True)
class Monitor:
    """A metric name (None: by task) and its mode (None: by the name)."""

    name: str | None = None
    mode: str | None = None

    def read(self, metrics: Mapping[str, Any]) -> tuple[str, float, bool] | None:
        """(name, value, higher is better) of the monitored metric in one epoch's `metrics`, or None
        when the default monitor finds nothing to watch. A metric asked for by name must be there."""
        if self.name is None:
            name = next((key for key in DEFAULT_MONITORS if key in metrics), None)
            if name is None:
                return None
        else:
            name = self.name
            if name not in metrics:
                numbers = sorted(key for key, value in metrics.items()
                                 if isinstance(value, (int, float)) and key not in ("epoch",))
                raise InvalidArgumentError(f"monitor={name!r} is not among this run's epoch metrics; they are "
                                           f"{', '.join(numbers)}")
        mode = self.mode or default_mode(name)
        return name, float(metrics[name]), mode == "max"


def improves(value: float, best: float | None, higher: bool, min_delta: float = 0.0) -> bool:
    """Whether `value` beats `best` by more than `min_delta` (NaN never does; anything beats None)."""
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value > best + min_delta if higher else value < best - min_delta
