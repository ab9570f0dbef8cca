"""Early stopping: end a run once the monitored metric has not improved for `patience` epochs.

An epoch improves on the best so far when its value is better by more than `min_delta`
(Lightning's rule). The counters are part of every checkpoint, so a resumed run stops at the
same epoch as one that never stopped; a run resumed after it stopped early trains on only if
it is given a larger patience.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .monitoring import Monitor, improves


class EarlyStopping:
    """Counts epochs without improvement of the monitored metric; `should_stop` once there are `patience`."""

    def __init__(self, patience: int, min_delta: float = 0.0, monitor: str | None = None,
                 mode: str | None = None) -> None:
        self.patience, self.min_delta = patience, min_delta
        self.watch = Monitor(monitor, mode)
        self.best: float | None = None
        self.waited = 0  # epochs since the last improvement
        self.stopped_epoch: int | None = None

    @property
    def should_stop(self) -> bool:
        return self.waited >= self.patience

    def update(self, metrics: Mapping[str, Any]) -> bool:
        """Record one epoch's `metrics`; True when the run should stop after it."""
        read = self.watch.read(metrics)
        if read is None:
            return False
        _, value, higher = read
        if improves(value, self.best, higher, self.min_delta):
            self.best, self.waited = value, 0
        else:
            self.waited += 1
        if self.should_stop and self.stopped_epoch is None:
            self.stopped_epoch = int(metrics["epoch"])
        return self.should_stop

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "waited": self.waited, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        if state:
            self.best, self.waited, self.stopped_epoch = state["best"], state["waited"], state["stopped_epoch"]
            if not self.should_stop:  # a larger patience: the run goes on
                self.stopped_epoch = None
