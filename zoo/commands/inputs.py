"""What ``zoo predict`` gives a model: texts, image files or audio files, prepared as its training data was.

`predict_items` turns the command's INPUT arguments into the items to classify: for an image or
audio model, files and the matching files below folders; for a text model, texts, and the texts
of a .txt (one per line), CSV or JSONL file. `model_inputs` makes one batch of them.

Imported only when ``zoo predict`` runs (it imports torch and the readers of every modality).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import torch
from PIL import Image
from torch import nn

from ..cards import AudioInput, card_of
from ..data import files_under
from ..data.audio import AUDIO_EXTENSIONS, collate_audio, load_audio
from ..data.folders import IMAGE_EXTENSIONS
from ..data.images import image_transform, to_rgb
from ..data.tables import TABLE_SUFFIXES, located_rows
from ..data.text import tokenizer_for
from ..errors import DataError, InvalidArgumentError

Batch: TypeAlias = "tuple[torch.Tensor, ...] | dict[str, torch.Tensor]"

EXTENSIONS = {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS}  # what a folder is searched for
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
    extensions = EXTENSIONS[modality]
    found = sorted(str(p) for p in files_under(path, extensions))
    if not found:
        raise DataError(f"folder {given} holds no {modality} files (looked for {', '.join(extensions)} at any depth)")
    return found


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


def model_inputs(model: nn.Module, inputs: Sequence[str]) -> Batch:
    """One batch of `inputs` for `model` (`predict_items` values): texts for a text model, else paths of files."""
    return _PREPARE[card_of(model).modality](model, inputs)


def _texts(model: nn.Module, texts: Sequence[str]) -> Batch:
    return tokenizer_for(model).encode_batch(texts)


def _images(model: nn.Module, paths: Sequence[str]) -> Batch:
    transform = image_transform(model)
    tensors = []
    for path in paths:
        try:
            with Image.open(path) as image:
                tensors.append(transform(to_rgb(image)))  # as the training data was converted
        except OSError as exc:
            raise DataError(f"cannot read image {path}: {exc}") from exc
    return (torch.stack(tensors),)


def _audio(model: nn.Module, paths: Sequence[str]) -> Batch:
    card = card_of(model)
    spec = card.input_for()
    if not isinstance(spec, AudioInput):
        raise InvalidArgumentError(f"model {card.name!r} declares no audio input (sample rate) in its card")
    batch = collate_audio([load_audio(path, spec) for path in paths])
    return batch.waveforms, batch.lengths


_PREPARE: dict[str, Callable[[nn.Module, Sequence[str]], Batch]] = {"text": _texts, "image": _images, "audio": _audio}
