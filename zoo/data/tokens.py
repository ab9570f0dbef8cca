"""Token-labelled sentences (for token classification: named entities, parts of speech) from JSONL or CoNLL.

    {"tokens": ["John", "lives", "in", "Paris"], "labels": ["B-PER", "O", "O", "B-LOC"]}

or CoNLL: one word per line with its label last (separated by a tab or spaces; columns between
are ignored, as in CoNLL-2003's ``word POS chunk NER``), a blank line between sentences, and
``-DOCSTART-`` lines skipped::

    John    B-PER
    lives   O

Labels are class names (numbers are one class however they are written, as in `zoo.data.tables`);
class indices follow their sorted order, and a validation file reuses the training file's classes.
A batch is the tokenizer's output for the words plus per-token ``labels``: a word's first sub-word
token has the word's label, its other sub-word tokens, the special tokens and the padding have
-100 (`zoo.finetune.batches.IGNORE_INDEX`), which the loss and the accuracy leave out.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import DataError
from ..finetune.batches import IGNORE_INDEX
from . import require_two_classes
from .tables import label_name, located_rows, sorted_labels

CONLL_SUFFIXES = (".conll", ".iob", ".iob2", ".bio")
JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
Sentence = tuple[list[str], list[str]]  # words and their labels


def is_token_file(path: str | os.PathLike[str], *, tokens_column: str = "tokens") -> bool:
    """Whether `path` holds token-labelled sentences: a CoNLL file, or JSON rows whose `tokens_column` is a list."""
    path = Path(path).expanduser()
    if path.suffix.lower() in CONLL_SUFFIXES:
        return True
    if path.suffix.lower() not in JSON_SUFFIXES or not path.is_file():
        return False
    return isinstance(located_rows(path)[0][1].get(tokens_column), list)


def read_sentences(path: str | os.PathLike[str], *, tokens_column: str = "tokens",
                   labels_column: str = "labels") -> list[Sentence]:
    """``(words, labels)`` of every sentence in a CoNLL or JSON Lines file, label names as `label_name` gives them."""
    path = Path(path).expanduser()
    if path.suffix.lower() in CONLL_SUFFIXES:
        return _conll_sentences(path)
    if path.suffix.lower() not in JSON_SUFFIXES:
        raise DataError(f"{path}: token-labelled data must be a JSON Lines file ({', '.join(JSON_SUFFIXES)}) with "
                        f"'{tokens_column}' and '{labels_column}' lists, or a CoNLL file ({', '.join(CONLL_SUFFIXES)})")
    return [_json_sentence(path, where, row, tokens_column, labels_column) for where, row in located_rows(path)]


def _json_sentence(path: Path, where: str, row: dict[str, Any], tokens_column: str, labels_column: str) -> Sentence:
    words, labels = row.get(tokens_column), row.get(labels_column)
    names = [label_name(label) for label in labels] if isinstance(labels, list) else None
    if (not isinstance(words, list) or not all(isinstance(w, str) for w in words) or names is None
            or not all(names) or len(names) != len(words)):
        raise DataError(f"{path}, {where}: needs a list of words in {tokens_column!r} and a list of as many labels "
                        f"(names or numbers) in {labels_column!r}, got {row!r}")
    return words, [str(name) for name in names]


def _conll_sentences(path: Path) -> list[Sentence]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}; CoNLL files must be UTF-8") from exc
    sentences: list[Sentence] = []
    words: list[str] = []
    labels: list[str] = []
    for number, line in enumerate([*lines, ""], start=1):
        fields = line.split()
        if fields[:1] == ["-DOCSTART-"]:
            continue
        if not fields:
            if words:
                sentences.append((words, labels))
            words, labels = [], []
            continue
        name = label_name(fields[-1])
        if len(fields) < 2 or not name:
            raise DataError(f"{path}, line {number}: expected a word and its label separated by a tab or spaces, "
                            f"got {line!r}; put a blank line between sentences")
        words.append(fields[0])
        labels.append(name)
    if not sentences:
        raise DataError(f"{path} has no sentences: write one word and its label per line")
    return sentences


def align_labels(word_ids: Sequence[int | None], word_labels: Sequence[int]) -> list[int]:
    """Per-token labels from per-word ones: a word's first token gets its label, every other token -100."""
    labels, previous = [], None
    for word in word_ids:
        labels.append(word_labels[word] if word is not None and word != previous else IGNORE_INDEX)
        previous = word
    return labels


class TokenTable(Dataset[tuple[list[str], list[int]]]):
    """``(words, class index per word)`` sentences from a JSONL or CoNLL file; ``collate_fn`` tokenizes a batch.

    `train` data must hold at least two classes. Attributes: ``classes``, ``sentences`` (the words),
    ``targets`` (class indices per word), ``collate_fn`` (set by giving a tokenizer) and ``augments``
    (always False). It has no ``fingerprint``: batches are padded to their longest sentence, so a
    frozen backbone's features differ in length and are not cached.
    """

    augments = False

    def __init__(self, path: str | os.PathLike[str], *, tokens_column: str = "tokens", labels_column: str = "labels",
                 classes: Sequence[str] | None = None, tokenizer: Any = None, train: bool = False) -> None:
        self.path = Path(path).expanduser()
        sentences = read_sentences(self.path, tokens_column=tokens_column, labels_column=labels_column)
        found = {label for _, labels in sentences for label in labels}
        if train:
            require_two_classes(found, f"training data {self.path}", "label the words with at least two labels")
        self.classes = list(classes) if classes is not None else sorted_labels(found)
        index = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted(found - set(index))
        if unknown:
            raise DataError(f"{self.path} has labels the model was not trained on: {unknown[:10]}; "
                            f"known labels are {self.classes}")
        self.sentences = [words for words, _ in sentences]
        self.targets = [[index[label] for label in labels] for _, labels in sentences]
        self.collate_fn = TokenCollate(tokenizer) if tokenizer is not None else None

    def set_tokenizer(self, tokenizer: Any) -> None:
        self.collate_fn = TokenCollate(tokenizer)

    def __len__(self) -> int:
        return len(self.sentences)

    def __getitem__(self, index: int) -> tuple[list[str], list[int]]:
        return self.sentences[index], self.targets[index]

    def __repr__(self) -> str:
        return f"TokenTable(path={str(self.path)!r}, sentences={len(self)}, classes={len(self.classes)})"


class TokenCollate:
    """A batch of ``(words, labels)`` -> tokenizer tensors plus per-token ``labels`` (picklable)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def __call__(self, batch: Sequence[tuple[list[str], list[int]]]) -> dict[str, Any]:
        import torch

        encoded, word_ids = self.tokenizer.encode_words([words for words, _ in batch])
        labels = [align_labels(ids, targets) for ids, (_, targets) in zip(word_ids, batch)]
        encoded["labels"] = torch.tensor(labels, dtype=torch.long)
        return dict(encoded)

    def __repr__(self) -> str:
        return f"TokenCollate({self.tokenizer!r})"
