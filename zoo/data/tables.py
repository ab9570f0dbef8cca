"""Labelled texts from a CSV or JSON Lines file: one row per example, a text and a label column.

    text,label                         {"text": "great film", "label": "pos"}
    great film,pos                     {"text": "dull", "label": "neg"}

Labels may be names or integers; class indices follow their sorted order (numeric order
when every label is an integer). A validation file reuses the training file's classes.
Batches are the model's tokenizer output plus ``labels``: ``{"input_ids", "attention_mask",
"token_type_ids", "labels"}``, so a text model is called as ``model(**inputs)``.
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any, Sequence

from torch.utils.data import Dataset

from ..errors import DataError

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a CSV/TSV (header line first) or JSON Lines file (one object per line)."""
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


def _csv_rows(path: Path, text: str, suffix: str) -> list[dict[str, Any]]:
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")
    try:
        return [dict(row) for row in reader]
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: {exc}") from exc


def _json_rows(path: Path, text: str) -> list[dict[str, Any]]:
    stripped = text.lstrip()
    if path.suffix.lower() == ".json" and stripped.startswith("["):
        try:
            rows = json.loads(text)
        except ValueError as exc:
            raise DataError(f"{path} is not valid JSON: {exc}") from exc
        if not all(isinstance(row, dict) for row in rows):
            raise DataError(f"{path} must hold a list of objects, one per example")
        return rows
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
        rows.append(row)
    return rows


class TextTable(Dataset):
    """``(text, class index)`` pairs from a table file; ``collate_fn`` tokenizes a batch.

    Attributes: ``classes``, ``texts``, ``targets``, ``collate_fn`` (set by giving a
    tokenizer), ``augments`` (always False) and ``fingerprint``.
    """

    augments = False

    def __init__(self, path: str | os.PathLike, *, text_column: str = "text", label_column: str = "label",
                 classes: Sequence[str] | None = None, tokenizer: Any = None) -> None:
        self.path = Path(path).expanduser()
        rows = read_rows(self.path)
        columns = list(rows[0])
        for role, column in (("text", text_column), ("label", label_column)):
            if column not in columns:
                raise DataError(f"{self.path} has no {role} column {column!r}; its columns are {columns}. "
                                f"Name the right one with {role}_column= (--{role}-column on the command line)")
        texts, labels = [], []
        for number, row in enumerate(rows, start=1):
            text, label = row.get(text_column), row.get(label_column)
            if not isinstance(text, str) or label is None or label == "":
                raise DataError(f"{self.path}, row {number}: needs a text in {text_column!r} and a label in "
                                f"{label_column!r}, got {row!r}")
            texts.append(text)
            labels.append(str(label))
        self.classes = list(classes) if classes is not None else _sorted_labels(labels)
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
        encoded = self.tokenizer.encode_batch(texts)
        encoded["labels"] = torch.tensor([label for _, label in batch], dtype=torch.long)
        return encoded

    def __repr__(self) -> str:
        return f"TextCollate({self.tokenizer!r})"


def _sorted_labels(labels: list[str]) -> list[str]:
    unique = set(labels)
    try:
        return sorted(unique, key=int)
    except ValueError:
        return sorted(unique)
