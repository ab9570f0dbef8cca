"""A run's per-epoch history as files in its run folder: ``history.csv`` (one row per epoch, the numbers)
and ``history.json`` (every epoch's metrics, confusion matrices included).

`HistoryFiles` is a trainer callback: it rewrites both files after every epoch, so a stopped or
killed run keeps the history of the epochs it finished, and a resumed run carries it on.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files import write_text_atomic

if TYPE_CHECKING:
    from ..finetune import Trainer

HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"


def write_history(history: Sequence[dict[str, Any]], folder: Path) -> list[Path]:
    """Write `history` (one dict of metrics per epoch) to `folder` as CSV and JSON; returns both paths."""
    return [write_text_atomic(folder / HISTORY_CSV, history_csv(history)),
            write_text_atomic(folder / HISTORY_JSON, json.dumps(list(history), indent=2, default=str) + "\n")]


def history_csv(history: Sequence[dict[str, Any]]) -> str:
    """One row per epoch, one column per metric that is a number (lists such as confusion matrices are left out)."""
    columns: list[str] = []
    for metrics in history:
        columns += [key for key, value in metrics.items() if _is_number(value) and key not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return text.getvalue()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class HistoryFiles:
    """Trainer callback: the history files in `folder`, rewritten at the end of every epoch (first process only)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        if trainer.context.is_main:
            write_history(trainer.history, self.folder)
