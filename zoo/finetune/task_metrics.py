"""Task metrics measured on the validation data after each epoch: by default the card's task's, or
those named in ``metrics=``.

Each metric adds up sufficient statistics during the epoch (counts, a confusion matrix, sums of
errors, edit counts) as one float64 vector on the device, and `compute` adds those vectors up over
processes before any ratio is taken, so a run on several processes reports what one process would.

    classification           top5_accuracy (any k), macro_f1, per_class (precision, recall, F1, support)
    token-classification     entity_f1 (with entity_precision and entity_recall; BIO/IOB2 tags as seqeval reads them)
    speech recognition       wer, cer (greedy CTC decoding of the model's vocabulary)
    regression (loss="mse")  mse, mae, r2

A metric object of your own goes in ``metrics=`` too: anything with ``update(output, target)`` and
``compute()`` (a torchmetrics ``Metric``; it reduces over processes itself).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from ..errors import InvalidArgumentError
from .distributed import Context, all_reduce_sum
from .metrics import is_classification

CLASSIFICATION_METRICS = ("top5_accuracy", "macro_f1", "per_class")
METRIC_NAMES = (*CLASSIFICATION_METRICS, "entity_f1", "wer", "cer", "mse", "mae", "r2")
_TOP_K = re.compile(r"top(\d+)_accuracy$")
SPEECH_TASKS = ("automatic-speech-recognition", "speech-recognition")
MetricSpec = Sequence[object] | None


@runtime_checkable
class EpochMetric(Protocol):
    """What the trainer asks of a metric: `reset` before an epoch's measurement, `update` per batch,
    `compute` once at the end (on every process: it may reduce over them). Objects of other kinds
    (torchmetrics') are wrapped in `ObjectMetric`."""

    def reset(self) -> None: ...
    def update(self, output: torch.Tensor, target: Any) -> None: ...
    def compute(self, context: Context | None = None) -> dict[str, Any]: ...


class SumMetric:
    """A metric whose state is one vector of sums; its length may grow with the data (classes seen)."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None

    def reset(self) -> None:
        self.sums = None

    def update(self, output: torch.Tensor, target: Any) -> None:
        raise NotImplementedError

    def compute(self, context: Context | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def add(self, values: torch.Tensor) -> None:
        values = values.detach().to(torch.float64).reshape(-1)
        if self.sums is None:
            self.sums = torch.zeros_like(values)
        if self.sums.numel() < values.numel():  # never happens for a fixed layout; guards a mistake
            raise ValueError(f"{type(self).__name__}: the statistics changed size within an epoch")
        self.sums += values

    def reduced(self, context: Context | None) -> torch.Tensor | None:
        """The sums over every process (each process takes part, even one that saw no batch)."""
        sums = self.sums
        if context is None or not context.is_distributed:
            return None if sums is None else sums.cpu()
        size = torch.tensor([0 if sums is None else sums.numel()], device=context.device)
        torch.distributed.all_reduce(size, op=torch.distributed.ReduceOp.MAX)
        if int(size.item()) == 0:
            return None
        total = torch.zeros(int(size.item()), dtype=torch.float64, device=context.device)
        if sums is not None:
            total[:sums.numel()] += sums.to(context.device)
        return all_reduce_sum(total, context).cpu()


# ---------------------------------------------------------------------------- classification


class TopKAccuracy(SumMetric):
    """The share of labelled samples (or tokens) whose true class is among the `k` highest scores."""

    def __init__(self, k: int = 5) -> None:
        super().__init__()
        self.k = k
        self.name = f"top{k}_accuracy"

    def update(self, output: torch.Tensor, target: Any) -> None:
        if not isinstance(target, torch.Tensor) or not is_classification(output, target):
            return
        scores, truth = output.detach().reshape(-1, output.shape[-1]), target.reshape(-1)
        labelled = truth >= 0
        top = scores.topk(min(self.k, scores.shape[-1]), dim=-1).indices
        hits = (top == truth.unsqueeze(-1)).any(dim=-1) & labelled
        self.add(torch.stack([hits.sum(), labelled.sum()]))

    def compute(self, context: Context | None = None) -> dict[str, Any]:
        sums = self.reduced(context)
        hits, total = sums.tolist() if sums is not None else (0.0, 0.0)
        return {self.name: hits / total if total else float("nan")}


class ClassReport(SumMetric):
    """Macro-F1 and per-class precision, recall, F1 and support, from a confusion matrix.

    The macro average is over the classes that occur in the truth or the predictions (as
    scikit-learn's ``f1_score(average="macro")``); a class never predicted has precision 0.
    """

    name = "macro_f1"

    def update(self, output: torch.Tensor, target: Any) -> None:
        if not isinstance(target, torch.Tensor) or not is_classification(output, target):
            return
        classes = output.shape[-1]
        predicted = output.detach().argmax(dim=-1).reshape(-1)
        truth = target.reshape(-1).to(predicted.device)
        pairs = torch.where(truth >= 0, truth * classes + predicted, classes * classes)
        self.add(torch.bincount(pairs, minlength=classes * classes + 1)[:classes * classes])

    def compute(self, context: Context | None = None) -> dict[str, Any]:
        sums = self.reduced(context)
        if sums is None:
            return {}
        classes = int(round(sums.numel() ** 0.5))
        return class_report(sums.view(classes, classes))


def class_report(confusion: torch.Tensor | Sequence[Sequence[float]]) -> dict[str, Any]:
    """``macro_f1`` and ``per_class`` (lists by class index) from a confusion matrix ``[true, predicted]``."""
    matrix = torch.as_tensor(confusion, dtype=torch.float64)
    correct, support, predicted = matrix.diag(), matrix.sum(dim=1), matrix.sum(dim=0)
    precision = torch.where(predicted > 0, correct / predicted.clamp(min=1), torch.zeros_like(correct))
    recall = torch.where(support > 0, correct / support.clamp(min=1), torch.zeros_like(correct))
    both = precision + recall
    f1 = torch.where(both > 0, 2 * precision * recall / both.clamp(min=1e-300), torch.zeros_like(correct))
    present = (support > 0) | (predicted > 0)
    macro = float(f1[present].mean()) if bool(present.any()) else float("nan")
    return {"macro_f1": macro,
            "per_class": {"precision": precision.tolist(), "recall": recall.tolist(), "f1": f1.tolist(),
                          "support": [int(v) for v in support.tolist()]}}


# ---------------------------------------------------------------------------- token classification


class EntityF1(SumMetric):
    """Entity-level precision, recall and F1 over BIO/IOB2 tags (``B-PER``, ``I-PER``, ``O``; ``E-``
    and ``S-`` of IOBES are read too), as seqeval computes them in its default mode.

    An entity counts as found when a predicted span has the same type, start and end as a true one.
    Only labelled tokens (target 0 or more: each word's first sub-word) are read, in order.
    """

    name = "entity_f1"

    def __init__(self, tags: Sequence[str]) -> None:
        super().__init__()
        self.tags = [str(tag) for tag in tags]

    def update(self, output: torch.Tensor, target: Any) -> None:
        if not isinstance(target, torch.Tensor) or output.dim() != 3 or not is_classification(output, target):
            return
        predicted = output.detach().argmax(dim=-1).cpu().tolist()
        found = true = hits = 0
        for row, scores in zip(target.cpu().tolist(), predicted):
            kept = [(t, p) for t, p in zip(row, scores) if t >= 0]
            truth_spans = entities([self.tags[t] for t, _ in kept])
            predicted_spans = entities([self.tags[p] for _, p in kept])
            found, true = found + len(predicted_spans), true + len(truth_spans)
            hits += len(truth_spans & predicted_spans)
        self.add(torch.tensor([hits, found, true]))

    def compute(self, context: Context | None = None) -> dict[str, Any]:
        sums = self.reduced(context)
        hits, found, true = sums.tolist() if sums is not None else (0.0, 0.0, 0.0)
        precision = hits / found if found else 0.0
        recall = hits / true if true else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"entity_f1": f1, "entity_precision": precision, "entity_recall": recall}


def entities(tags: Sequence[str]) -> set[tuple[str, int, int]]:
    """The (type, first, last) spans in a tag sequence.

    A span starts at ``B-``/``S-``, at an ``I-``/``E-`` that follows ``O``, the end of another span
    or a tag of another type; it ends before ``B-``, ``S-``, ``O`` or a tag of another type, and after
    ``E-``/``S-``.
    """
    spans: set[tuple[str, int, int]] = set()
    start: int | None = None
    kind = ""
    previous = "O"
    for index, tag in enumerate([*tags, "O"]):
        prefix, _, name = tag.partition("-")
        prefix = prefix.upper() if name else "O"  # a tag without a type is outside every entity
        closes = start is not None and (previous in ("E", "S") or prefix in ("B", "S", "O") or name != kind)
        if closes:
            assert start is not None  # closes implies an open span
            spans.add((kind, start, index - 1))
            start = None
        if prefix != "O" and (start is None):
            start, kind = index, name
        previous = prefix
    return spans


# ---------------------------------------------------------------------------- speech recognition


class ErrorRate(SumMetric):
    """Word (``wer``) or character (``cer``) error rate: edits (substitutions, deletions, insertions)
    over the words or characters of the references, added up over the whole epoch (as jiwer's
    corpus-level rates). Characters include the spaces between words.

    `decode` turns the model's output into texts (default: greedy CTC over `vocab`, blank at index 0
    and ``|`` between words); a target is a list of texts, or indices into `vocab` (padding below 0
    or the blank is dropped).
    """

    def __init__(self, unit: str = "word", vocab: Sequence[str] | None = None,
                 decode: Callable[[torch.Tensor], list[str]] | None = None, blank: int = 0,
                 separator: str = "|") -> None:
        super().__init__()
        if unit not in ("word", "char"):
            raise InvalidArgumentError(f"unit must be 'word' or 'char', got {unit!r}")
        if vocab is None and decode is None:
            raise InvalidArgumentError("wer and cer need the model's vocabulary (vocab=) or a decode function")
        self.unit, self.vocab, self.blank, self.separator = unit, list(vocab or []), blank, separator
        self.decode = decode or self._greedy
        self.name = "wer" if unit == "word" else "cer"

    def _text(self, indices: Sequence[int]) -> str:
        return "".join(self.vocab[i] for i in indices).replace(self.separator, " ").strip()

    def _greedy(self, output: torch.Tensor) -> list[str]:
        texts = []
        for path in output.detach().argmax(dim=-1).cpu().tolist():
            kept = [i for n, i in enumerate(path) if i != self.blank and (n == 0 or path[n - 1] != i)]
            texts.append(" ".join(self._text(kept).split()))
        return texts

    def _references(self, target: Any) -> list[str]:
        if isinstance(target, torch.Tensor):
            return [" ".join(self._text([i for i in row if i >= 0 and i != self.blank]).split())
                    for row in target.cpu().tolist()]
        return [str(text) for text in target]

    def update(self, output: torch.Tensor, target: Any) -> None:
        edits = length = 0
        for hypothesis, reference in zip(self.decode(output), self._references(target), strict=True):
            ref, hyp = (reference.split(), hypothesis.split()) if self.unit == "word" else (reference, hypothesis)
            edits += edit_distance(ref, hyp)
            length += len(ref)
        self.add(torch.tensor([edits, length]))

    def compute(self, context: Context | None = None) -> dict[str, Any]:
        sums = self.reduced(context)
        edits, length = sums.tolist() if sums is not None else (0.0, 0.0)
        return {self.name: edits / length if length else float("nan")}


def edit_distance(reference: Sequence[Any], hypothesis: Sequence[Any]) -> int:
    """Levenshtein distance: the fewest substitutions, deletions and insertions from `reference` to `hypothesis`."""
    previous = list(range(len(hypothesis) + 1))
    for i, item in enumerate(reference, 1):
        current = [i]
        for j, other in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (item != other)))
        previous = current
    return previous[-1]


# ---------------------------------------------------------------------------- regression


class Regression(SumMetric):
    """``mse``, ``mae`` and ``r2`` (those in `names`) of real-valued outputs, per output averaged
    over outputs as scikit-learn's ``uniform_average`` does; an output whose truth is constant has
    R² 1 when predicted exactly, else 0."""

    def __init__(self, names: Sequence[str] = ("mse", "mae", "r2")) -> None:
        super().__init__()
        self.names = tuple(names)
        self.name = "_".join(self.names)

    def update(self, output: torch.Tensor, target: Any) -> None:
        if not isinstance(target, torch.Tensor) or not target.is_floating_point():
            return
        y = target.detach().to(torch.float64).reshape(target.shape[0] if target.dim() else 1, -1)
        p = output.detach().to(torch.float64).reshape(y.shape)
        error = p - y
        count = torch.tensor([y.shape[0]], dtype=torch.float64, device=y.device)
        self.add(torch.cat([count, y.sum(0), y.pow(2).sum(0), error.pow(2).sum(0), error.abs().sum(0)]))

    def compute(self, context: Context | None = None) -> dict[str, Any]:
        sums = self.reduced(context)
        if sums is None or not sums[0]:
            return {}
        n, rest = float(sums[0]), sums[1:].view(4, -1)
        total, squares, sse, sae = rest
        spread = squares - total.pow(2) / n
        r2 = torch.where(spread > 0, 1 - sse / spread.clamp(min=1e-300),
                         torch.where(sse == 0, torch.ones_like(sse), torch.zeros_like(sse)))
        values = {"mse": float(sse.mean()) / n, "mae": float(sae.mean()) / n, "r2": float(r2.mean())}
        return {name: values[name] for name in self.names}


# ---------------------------------------------------------------------------- metric objects of your own


class ObjectMetric:
    """A torchmetrics-style object (``update(preds, target)``, ``compute()``, ``reset()``) as an epoch metric.

    Its value goes into the history under `name` (default: its class name in snake case); a
    tensor of one value becomes a float, a larger one a list. torchmetrics reduces over processes
    in ``compute`` itself.
    """

    def __init__(self, metric: Any, name: str | None = None) -> None:
        self.metric = metric
        self.name = name or snake_case(type(metric).__name__)

    def reset(self) -> None:
        reset = getattr(self.metric, "reset", None)
        if callable(reset):
            reset()

    def update(self, output: torch.Tensor, target: Any) -> None:
        self.metric.update(output.detach(), target)

    def compute(self, context: Context | None = None) -> dict[str, Any]:
        value = self.metric.compute()
        if isinstance(value, dict):
            return {f"{self.name}_{key}": plain_value(item) for key, item in value.items()}
        return {self.name: plain_value(value)}


def plain_value(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return float(value) if value.numel() == 1 else value.detach().cpu().tolist()
    return value


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


# ---------------------------------------------------------------------------- choosing the metrics


def check_metrics(value: Any) -> None:
    """`value` is None, or a list of metric names (`METRIC_NAMES`, ``topK_accuracy``) and metric objects."""
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise InvalidArgumentError(f"metrics must be None (the task's metrics) or a list of metric names and "
                                   f"objects, got {value!r}; the names are {', '.join(METRIC_NAMES)}")
    for item in value:
        if isinstance(item, str):
            if item not in METRIC_NAMES and not _TOP_K.match(item):
                raise InvalidArgumentError(f"unknown metric {item!r}; the metrics are {', '.join(METRIC_NAMES)} "
                                           "(top5_accuracy takes any k: top3_accuracy), or metric objects")
        elif not (callable(getattr(item, "update", None)) and callable(getattr(item, "compute", None))):
            raise InvalidArgumentError(f"metric {item!r} has no update() and compute(): give a metric name "
                                       f"({', '.join(METRIC_NAMES)}) or an object such as a torchmetrics Metric")


def default_metric_names(task: str | None, loss: object, labels: Sequence[str] | None,
                         vocab: Sequence[str] | None) -> list[str]:
    """The metrics a run measures when ``metrics=None``: the card's task's (and the loss's)."""
    if loss == "mse":
        return ["mse", "mae", "r2"]
    if task in SPEECH_TASKS:
        return ["wer", "cer"] if vocab else []
    if task == "token-classification":
        return ["entity_f1"] if labels and is_bio(labels) else ["macro_f1"]
    if loss != "cross_entropy":
        return []
    names = ["macro_f1"]
    return names + ["top5_accuracy"] if labels is not None and len(labels) > 5 else names


def is_bio(labels: Sequence[str]) -> bool:
    """Class names that are entity tags: ``O`` and ``B-``/``I-`` (or ``E-``/``S-``) prefixed types."""
    return any(str(label)[:2].upper() in ("B-", "I-") for label in labels) and all(
        str(label) == "O" or str(label)[:2].upper() in ("B-", "I-", "E-", "S-") for label in labels)


def build_metrics(spec: MetricSpec, *, task: str | None = None, loss: object = "cross_entropy",
                  labels: Sequence[str] | None = None, vocab: Sequence[str] | None = None) -> list[EpochMetric]:
    """The metric objects of a run: `spec` (names and objects), or the task's defaults when it is None."""
    check_metrics(spec)
    items: Sequence[object] = default_metric_names(task, loss, labels, vocab) if spec is None else spec
    built: list[EpochMetric] = []
    regression = [name for name in ("mse", "mae", "r2") if name in items]
    if regression:
        built.append(Regression(regression))
    report = False
    for item in items:
        if not isinstance(item, str):
            built.append(item if isinstance(item, (SumMetric, ObjectMetric)) else ObjectMetric(item))
        elif (match := _TOP_K.match(item)) is not None:
            built.append(TopKAccuracy(int(match.group(1))))
        elif item in ("macro_f1", "per_class") and not report:
            report = True
            built.append(ClassReport())
        elif item == "entity_f1":
            if not labels:
                raise InvalidArgumentError("entity_f1 needs the class names (BIO tags such as B-PER, I-PER, O): "
                                           "pass labels=, or data that has classes")
            built.append(EntityF1(labels))
        elif item in ("wer", "cer"):
            if not vocab:
                raise InvalidArgumentError(f"{item} needs the model's vocabulary (a 'labels' attribute with one "
                                           f"token per output index), or a metric object: ErrorRate(decode=...)")
            built.append(ErrorRate("word" if item == "wer" else "char", vocab))
    return built


def compute_all(metrics: Sequence[EpochMetric], context: Context | None = None) -> dict[str, Any]:
    """Every metric's values, in order (every process calls this: metrics reduce over processes)."""
    values: dict[str, Any] = {}
    for metric in metrics:
        values.update(metric.compute(context))
    return values
