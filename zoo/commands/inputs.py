"""What ``zoo predict`` gives a model: texts, image files or audio files.

`predict_items` turns the command's INPUT arguments into the items to classify: for an image or
audio model, files and the matching files below folders; for a text model, texts, and the texts
of a .txt (one per line), CSV or JSONL file. `zoo.pipelines` prepares and runs them.

Imported only when ``zoo predict`` runs (through `zoo.pipelines`, it imports torch and the readers of every modality).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..cards import card_of
from ..data.tables import TABLE_SUFFIXES, located_rows
from ..errors import DataError
from ..pipelines import folder_files

TEXT_FILES = (".txt", *TABLE_SUFFIXES)  # files whose texts a text model classifies


@dataclass(frozen=True)
class Item:
    """One thing to classify: a file's path, or a text (`source` says where a text read from a file was)."""

    value: str
    source: str | None = None


def predict_items(model: nn.Module, inputs: Sequence[str], *, text_column: str = "text") -> list[Item]:
    """The items `inputs` name for `model`, in order: each folder's files sorted, each file's texts in file order."""
    modality = card_of(model).modality
    items: list[Item] = []
    for given in inputs:
        if modality == "text":
            items += _text_items(given, text_column)
        else:
            items += [Item(path) for path in _files(given, modality)]
    return items


def _files(given: str, modality: str) -> list[str]:
    """A file as it is; a folder's files with the modality's extensions, at any depth, sorted."""
    path = Path(given).expanduser()
    if path.is_file():
        return [given]
    if not path.is_dir():
        raise DataError(f"no such file or folder: {given}")
    return folder_files(given, modality)


def _text_items(given: str, text_column: str) -> list[Item]:
    """A text as it is; the texts of a .txt, CSV or JSONL file; a missing file or a folder is an error."""
    path = Path(given).expanduser()
    named_file = path.suffix.lower() in TEXT_FILES and not any(c.isspace() for c in given)
    if path.is_dir():
        raise DataError(f"{given} is a folder; a text model classifies texts: give them as arguments or in a "
                        f"{', '.join(TEXT_FILES)} file")
    if path.is_file() and path.suffix.lower() in TEXT_FILES:
        return list(_texts_in(path, text_column))
    if named_file:
        raise DataError(f"no such file: {given} (an input that ends in {', '.join(TEXT_FILES)} and holds no space "
                        "is read as a file of texts)")
    return [Item(given)]


def _texts_in(path: Path, text_column: str) -> Iterator[Item]:
    if path.suffix.lower() == ".txt":
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {path}: {exc}; text files must be UTF-8") from exc
        yield from (Item(line, f"{path}, line {number}") for number, line in enumerate(lines, start=1) if line.strip())
        return
    for where, row in located_rows(path):
        text = row.get(text_column)
        if not isinstance(text, str):
            columns = ", ".join(map(str, row)) or "none"
            raise DataError(f"{path}, {where}: no text in column {text_column!r} (its columns: {columns}); "
                            "name the text column with --text-column")
        yield Item(text, f"{path}, {where}")
