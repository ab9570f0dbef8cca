"""Labelled texts from a CSV or JSON Lines file: one row per example, a text and a label column.

    text,label                         {"text": "great film", "label": "pos"}
    great film,pos                     {"text": "dull", "label": "neg"}

Labels may be names or numbers (a number is one class however it is written: 1, 1.0, "1");
class indices follow their sorted order (numeric order when every label is an integer). A validation
file reuses the training file's classes.
Batches are the model's tokenizer output plus ``labels``: ``{"input_ids", "attention_mask",
"token_type_ids", "labels"}``, so a text model is called as ``model(**inputs)``.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import DataError
from . import require_two_classes

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a CSV/TSV (header line first) or JSON Lines file (one object per line)."""
    return [row for _, row in located_rows(path)]


def located_rows(path: str | os.PathLike[str]) -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` pairs: each row with its place in the file (``"line 3"``, or ``"item 3"`` of a JSON list)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"data file {path} does not exist" if not path.exists()
                        else f"{path} is a folder; text data is one CSV or JSONL file")
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: text data must be a {', '.join(TABLE_SUFFIXES)} file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}; text files must be UTF-8") from exc
    rows = _json_rows(path, text) if suffix in (".jsonl", ".ndjson", ".json") else _csv_rows(path, text, suffix)
    if not rows:
        raise DataError(f"{path} has no rows: add one example per line")
    return rows


def _csv_rows(path: Path, text: str, suffix: str) -> list[tuple[str, dict[str, Any]]]:
    """Rows as dicts keyed by the header; a row with more or fewer fields than the header is an error."""
    delimiter = "\t" if suffix == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        header: list[str] = next(reader, [])
        start = reader.line_num + 1
        for fields in reader:
            where, start = f"line {start}", reader.line_num + 1
            if not fields:
                continue  # a blank line
            if len(fields) != len(header):
                separator = "a tab" if delimiter == "\t" else "a comma"
                raise DataError(f"{path}, {where}: {len(fields)} fields where the header has {len(header)} "
                                f"({', '.join(header)}); put a text that holds {separator} in double quotes")
            rows.append((where, dict(zip(header, fields))))
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: {exc}") from exc
    return rows


def _json_rows(path: Path, text: str) -> list[tuple[str, dict[str, Any]]]:
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" and stripped.startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{path} is not valid JSON: {exc}") from exc
        if not all(isinstance(row, dict) for row in rows):
            raise DataError(f"{path} must hold a list of objects, one per example")
        return [(f"item {number}", row) for number, row in enumerate(rows, start=1)]
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise DataError(f"{path}, line {number}: not a JSON object ({exc})") from exc
        if not isinstance(row, dict):
            raise DataError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append((f"line {number}", row))
    return rows


def label_name(label: Any) -> str | None:
    """The class name of a label, or None for a value that cannot be one (a list, NaN, ...).

    A number is one class however it is written: ``1``, ``1.0``, ``"1"``, ``"1.0"`` and
    ``"+01"`` are all ``"1"``, and ``0.50`` and ``"0.5"`` are ``"0.5"``. Other text is kept as is.
    """
    if isinstance(label, float):
        if not math.isfinite(label):
            return None
        label = format(Decimal(repr(label)), "f")  # digits only: 1e-05 -> 0.00001
    elif isinstance(label, int) and not isinstance(label, bool):
        return str(label)
    elif not isinstance(label, (str, bool)):
        return None
    text = str(label)
    number = _DECIMAL.fullmatch(text)
    if number is None or not any(part for part in number.group(2, 3)):
        return text
    sign, whole, fraction = number.groups()
    whole, fraction = whole.lstrip("0") or "0", (fraction or "").rstrip("0")
    digits = whole + (f".{fraction}" if fraction else "")
    return f"-{digits}" if sign == "-" and digits != "0" else digits


_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")


class TextTable(Dataset[tuple[str, int]]):
    """``(text, class index)`` pairs from a table file; ``collate_fn`` tokenizes a batch.

    Labels are class names as `label_name` gives them (1, 1.0 and "1" are one class).
    `train` data must hold at least two classes. Attributes: ``classes``, ``texts``,
    ``targets``, ``collate_fn`` (set by giving a tokenizer), ``augments`` (always False)
    and ``fingerprint``.
    """

    augments = False

    def __init__(self, path: str | os.PathLike[str], *, text_column: str = "text", label_column: str = "label",
                 classes: Sequence[str] | None = None, tokenizer: Any = None, train: bool = False) -> None:
        self.path = Path(path).expanduser()
        rows = located_rows(self.path)
        columns = list(rows[0][1])
        for role, column in (("text", text_column), ("label", label_column)):
            if column not in columns:
                raise DataError(f"{self.path} has no {role} column {column!r}; its columns are {columns}. "
                                f"Name the right one with {role}_column= (--{role}-column on the command line)")
        texts, labels = [], []
        for where, row in rows:
            text, label = row.get(text_column), label_name(row.get(label_column))
            if not isinstance(text, str) or not label:
                raise DataError(f"{self.path}, {where}: needs a text in {text_column!r} and a label (a name or a "
                                f"number) in {label_column!r}, got {row!r}")
            texts.append(text)
            labels.append(label)
        if train:
            require_two_classes(set(labels), f"training data {self.path}",
                                "add examples of other labels, or name the label column with label_column= "
                                "(--label-column on the command line)")
        self.classes = list(classes) if classes is not None else sorted_labels(labels)
        index = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(f"{self.path} has labels the model was not trained on: {unknown[:10]}; "
                            f"known labels are {self.classes}")
        self.texts = texts
        self.targets = [index[label] for label in labels]
        self.collate_fn = TextCollate(tokenizer) if tokenizer is not None else None

    def set_tokenizer(self, tokenizer: Any) -> None:
        self.collate_fn = TextCollate(tokenizer)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, index: int) -> tuple[str, int]:
        return self.texts[index], self.targets[index]

    @property
    def fingerprint(self) -> dict[str, Any]:
        return {"file": self.path, "classes": self.classes, "texts": self.texts, "labels": self.targets}

    def __repr__(self) -> str:
        return f"TextTable(path={str(self.path)!r}, rows={len(self)}, classes={len(self.classes)})"


class TextCollate:
    """A batch of ``(text, label)`` pairs -> tokenizer tensors plus ``labels`` (picklable)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, batch: Sequence[tuple[str, int]]) -> dict[str, Any]:
        import torch

        texts = [text for text, _ in batch]
        encoded: dict[str, Any] = self.tokenizer.encode_batch(texts)
        encoded["labels"] = torch.tensor([label for _, label in batch], dtype=torch.long)
        return encoded

    def __repr__(self) -> str:
        return f"TextCollate({self.tokenizer!r})"


def sorted_labels(labels: Iterable[str]) -> list[str]:
    """The distinct labels in class-index order: numeric when every one is an integer, else alphabetical."""
    unique = set(labels)
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)
