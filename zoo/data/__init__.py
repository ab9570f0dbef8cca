"""Readers that turn user data (image folders, text CSV/JSONL, audio clips) into model inputs.

    >>> model = zoo.create("resnet18", pretrained=True, num_classes=5)
    >>> train = zoo.data.dataset_for(model, "flowers/train", train=True)
    >>> val = zoo.data.dataset_for(model, "flowers/val", classes=train.classes)

`dataset_for` picks the reader from the model's modality and prepares the data as the
model's card says: image folders (`folders.image_folder`), CSV/JSONL text tables
(`tables.TextTable`, tokenized with the model's tokenizer) and audio folders
(`folders.audio_folder`). Nothing here imports torch until a reader is used.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..cards import ModelCard
from ..errors import DataError, InvalidArgumentError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

__all__ = ["DataError", "class_names", "dataset_for", "modality_of"]


def class_names(path: str | os.PathLike, *, text_column: str = "text", label_column: str = "label") -> list[str]:
    """The classes a dataset holds, in index order, without reading the samples.

    A folder: its class sub-folders, sorted. A CSV/JSONL file: its labels, sorted (numerically
    when they are all integers). `zoo finetune` uses this to size the new head before building.
    """
    path = Path(path).expanduser()
    if path.is_file():
        from .tables import TextTable

        return TextTable(path, text_column=text_column, label_column=label_column).classes
    if not path.is_dir():
        raise DataError(f"data path {path} does not exist")
    names = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"{path} has no class sub-folders: put each class's files in {path}/<class name>/")
    return names


def modality_of(model_or_card: Any) -> str:
    return _card(model_or_card).modality


def dataset_for(
    model: Any,
    path: str | os.PathLike,
    *,
    train: bool = False,
    augment: bool = True,
    classes: Sequence[str] | None = None,
    skip_bad: bool = False,
    text_column: str = "text",
    label_column: str = "label",
) -> "Dataset":
    """A labelled dataset at `path`, prepared for `model` (a zoo model or its card).

    Args:
        train: the training split: random augmentation (images, audio crops) when `augment`,
            and for a text model without a tokenizer, a tokenizer trained on these texts.
        classes: class names in index order (a validation split passes ``train.classes``).
        skip_bad: leave out files that cannot be read (with a warning) instead of failing.
        text_column, label_column: the columns of a text table.

    The dataset has ``classes``, ``collate_fn`` (or None), ``augments`` and ``fingerprint``.
    """
    card = _card(model)
    path = Path(path).expanduser()
    if card.modality == "image":
        from .folders import image_folder

        return image_folder(path, card.input_for() if isinstance(model, ModelCard) else model, train=train,
                            augment=augment, classes=classes, skip_bad=skip_bad)
    if card.modality == "audio":
        from .folders import audio_folder

        spec = card.input_for()
        if spec is None:
            raise InvalidArgumentError(f"model {card.name!r} declares no audio input (sample rate) in its card")
        return audio_folder(path, spec, train=train, augment=augment, classes=classes, skip_bad=skip_bad)
    from .tables import TextTable
    from .text import tokenizer_for

    table = TextTable(path, text_column=text_column, label_column=label_column, classes=classes)
    if isinstance(model, ModelCard):
        tokenizer = tokenizer_for(model)
    else:
        tokenizer = tokenizer_for(model, train_texts=table.texts if train else None)
    table.set_tokenizer(tokenizer)
    return table


def _card(model_or_card: Any) -> ModelCard:
    if isinstance(model_or_card, ModelCard):
        return model_or_card
    card = getattr(model_or_card, "zoo_card", None)
    if card is None:
        raise DataError(f"cannot tell how to prepare data for a {type(model_or_card).__name__}: give a model made "
                        "by zoo.create (it carries its card) or a zoo.ModelCard")
    return card
