"""PNG plots of a finished run: each metric per epoch (training against validation) and the saved
model's confusion matrix, normalised by true class, with the class names.

matplotlib is imported only here and only when a plot is drawn (its Agg canvas, no pyplot and
no display), so importing zoo and listing models stay free of it.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

LOSS_PLOT = "loss.png"
CONFUSION_PLOT = "confusion.png"
# epoch metrics that are not curves worth drawing
_NOT_CURVES = ("epoch", "lr", "seconds", "samples")


def curve_names(history: Sequence[dict[str, Any]]) -> list[str]:
    """The metrics (without ``train_``/``val_``) that have a number in some epoch, loss first."""
    names: list[str] = []
    for metrics in history:
        for key, value in metrics.items():
            base = key.split("_", 1)[1] if key.startswith(("train_", "val_")) else None
            if base is None or base in _NOT_CURVES or not _is_number(value) or base in names:
                continue
            names.append(base)
    return sorted(names, key=lambda name: (name != "loss", names.index(name)))


def plot_curves(history: Sequence[dict[str, Any]], folder: Path) -> list[Path]:
    """One PNG per metric (``loss.png``, ``accuracy.png``, ...): its training and validation values per epoch."""
    paths = []
    for name in curve_names(history):
        figure, axes = _figure(6.0, 4.0)
        for split, style in (("train", "o-"), ("val", "s-")):
            points = [(m["epoch"], float(m[f"{split}_{name}"])) for m in history
                      if _is_number(m.get(f"{split}_{name}")) and "epoch" in m]
            if points:
                axes.plot(*zip(*points), style, label="validation" if split == "val" else "training")
        axes.set_xlabel("epoch")
        axes.set_ylabel(name)
        axes.set_title(f"{name} per epoch")
        axes.grid(alpha=0.3)
        axes.legend()
        paths.append(_save(figure, folder / f"{name}.png"))
    return paths


def normalised(matrix: Sequence[Sequence[float]]) -> list[list[float]]:
    """Each row (true class) divided by its total: the share of that class predicted as each class."""
    rows = []
    for row in matrix:
        total = float(sum(row))
        rows.append([float(v) / total if total else 0.0 for v in row])
    return rows


def plot_confusion(matrix: Sequence[Sequence[float]], labels: Sequence[str] | None, path: Path,
                   title: str = "confusion matrix") -> Path:
    """The confusion matrix normalised by true class, with class names on both axes (and the shares
    written in the cells while there are few enough classes to read them)."""
    size = len(matrix)
    names = [str(n) for n in labels] if labels is not None and len(labels) == size else [str(i) for i in range(size)]
    side = min(max(4.0, 0.45 * size + 2.5), 30.0)
    figure, axes = _figure(side, side)
    shares = normalised(matrix)
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
    axes.set_xticks(range(size), names, rotation=90 if size > 6 else 0)
    axes.set_yticks(range(size), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.set_title(f"{title} (each row sums to 1)")
    if size <= 20:
        for i, row in enumerate(shares):
            for j, value in enumerate(row):
                axes.text(j, i, f"{value:.2f}", ha="center", va="center",
                          color="white" if value > 0.5 else "black", fontsize=8)
    return _save(figure, path)


def _figure(width: float, height: float) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # a default dependency, imported only when plotting

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def _save(figure: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no display: draws into memory

    FigureCanvasAgg(figure)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png")
    return path


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
