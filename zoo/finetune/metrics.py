"""Epoch metrics: mean loss, and for classification accuracy and a confusion matrix.

Classification is one class per sample (scores ``(N, C)``, targets ``(N,)``) or one per token
(scores ``(N, T, C)``, targets ``(N, T)``); targets below 0 (``-100``: padding, and the sub-word
tokens after a word's first) are left out of the accuracy and the matrix. Sums stay on the device
as tensors during the epoch (no synchronisation per step) and are added up over processes once,
at the end.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .distributed import Context, all_reduce_sum


class Meter:
    """Accumulates one epoch's loss and, when the targets are class indices, its confusion matrix."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        self.count = torch.zeros((), dtype=torch.float64, device=self.device)
        self.confusion: torch.Tensor | None = None  # [true, predicted]

    @torch.no_grad()
    def update(self, loss: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        n = target.shape[0] if target.dim() else 1
        self.loss_sum += loss.detach().double() * n
        self.count += n
        if is_classification(output, target):
            classes = output.shape[-1]
            if self.confusion is None:
                self.confusion = torch.zeros(classes, classes, dtype=torch.int64, device=self.device)
            predicted = output.detach().argmax(dim=-1).reshape(-1).to(self.device)
            truth = target.reshape(-1).to(self.device)
            # an unlabelled target (below 0) goes to one extra bin past the matrix, which is dropped
            pairs = torch.where(truth >= 0, truth * classes + predicted, classes * classes)
            counts = torch.bincount(pairs, minlength=classes * classes + 1)[:classes * classes]
            self.confusion += counts.view(classes, classes)

    def compute(self, context: Context | None = None) -> dict[str, Any]:
        """Mean loss (and accuracy, confusion) over everything seen, on every process."""
        sums = torch.stack([self.loss_sum, self.count])
        confusion = self.confusion
        if context is not None and context.is_distributed:
            all_reduce_sum(sums, context)
            # every process must take part even if it saw no classification batch
            classes = torch.tensor([0 if confusion is None else confusion.shape[0]], device=self.device)
            torch.distributed.all_reduce(classes, op=torch.distributed.ReduceOp.MAX)
            if int(classes.item()):
                if confusion is None:
                    confusion = torch.zeros(int(classes.item()), int(classes.item()), dtype=torch.int64,
                                            device=self.device)
                all_reduce_sum(confusion, context)
        loss_sum, count = sums.tolist()
        result: dict[str, Any] = {"loss": loss_sum / count if count else float("nan"), "samples": int(count)}
        if confusion is not None:
            matrix = confusion.cpu()
            total = int(matrix.sum())
            result["accuracy"] = float(matrix.diag().sum()) / total if total else float("nan")
            result["confusion"] = matrix.tolist()
        return result


def is_classification(output: torch.Tensor, target: torch.Tensor) -> bool:
    """Class scores against class indices: ``output`` (N, C) and ``target`` (N,), or per token
    ``output`` (N, T, C) and ``target`` (N, T); targets are integers."""
    return (not target.is_floating_point() and not target.is_complex() and output.dim() in (2, 3)
            and target.dim() == output.dim() - 1 and output.shape[:-1] == target.shape)


def format_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str] | None = None) -> str:
    """A confusion matrix as aligned text: rows are true classes, columns predicted ones."""
    size = len(matrix)
    names = [str(x) for x in (labels if labels is not None and len(labels) == size else range(size))]
    width = max([len(n) for n in names] + [len(str(v)) for row in matrix for v in row] + [4])
    head = " " * (width + 2) + " ".join(n[:width].rjust(width) for n in names) + "   <- predicted"
    rows = [f"{names[i][:width].rjust(width)}  " + " ".join(str(v).rjust(width) for v in matrix[i])
            for i in range(size)]
    return "\n".join([head] + rows)


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """An epoch's metrics without the confusion matrices, per-class tables and sample counts (what its line shows)."""
    return {k: v for k, v in metrics.items() if not k.endswith(("confusion", "samples", "per_class"))}


def format_metrics(metrics: dict[str, Any]) -> str:
    """``key=value`` pairs of `summary`, floats to four places."""
    return " ".join(f"{key}={value:.4f}" if isinstance(value, float) else f"{key}={value}"
                    for key, value in summary(metrics).items())
