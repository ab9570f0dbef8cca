"""Readers that turn user data (image folders, text CSV/JSONL, audio clips) into model inputs.

    >>> model = zoo.create("resnet18", pretrained=True, num_classes=5)
    >>> train = zoo.data.dataset_for(model, "flowers/train", train=True)
    >>> val = zoo.data.dataset_for(model, "flowers/val", classes=train.classes)

`dataset_for` picks the reader from the model's modality and prepares the data as the
model's card says: image folders (`folders.image_folder`), CSV/JSONL text tables
(`tables.TextTable`, tokenized with the model's tokenizer), token-labelled JSONL/CoNLL
sentences for token classification (`tokens.TokenTable`) and audio folders
(`folders.audio_folder`). Nothing here imports torch until a reader is used.
"""
from __future__ import annotations

import os
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..cards import ModelCard
from ..errors import DataError, InvalidArgumentError

if TYPE_CHECKING:
    from torch.utils.data import Dataset

__all__ = ["DataError", "class_names", "dataset_for", "modality_of"]


def class_names(path: str | os.PathLike[str], *, text_column: str = "text", label_column: str = "label",
                train: bool = False, tokens_column: str = "tokens", labels_column: str = "labels") -> list[str]:
    """The classes a dataset holds, in index order, without reading the samples.

    A folder: its class sub-folders, sorted; each must hold at least one file. A CSV/JSONL
    file: its labels, sorted (numerically when they are all integers); token-labelled
    sentences (a CoNLL file, or JSONL rows with a list in `tokens_column`): their words'
    labels, sorted alike. `train`: the data is for training, so it must hold at least two
    classes. `zoo finetune` uses this to size the new head before building.
    """
    path = Path(path).expanduser()
    if path.is_file():
        from .tables import TextTable
        from .tokens import TokenTable, is_token_file

        if is_token_file(path, tokens_column=tokens_column):
            return TokenTable(path, tokens_column=tokens_column, labels_column=labels_column, train=train).classes
        return TextTable(path, text_column=text_column, label_column=label_column, train=train).classes
    names = class_folders(path, "files")
    for name in names:
        if next(files_under(path / name), None) is None:
            raise DataError(f"class folder {path / name} is empty: add its files or remove the folder")
    if train:
        require_two_classes(names, f"training data {path}",
                            f"put each class's files in its own sub-folder, {path}/<class name>/")
    return names


def class_folders(root: Path, kind: str) -> list[str]:
    """The sorted names of `root`'s class sub-folders (hidden ones left out); errors say how to lay data out."""
    if not root.exists():
        raise DataError(f"data path {root} does not exist")
    if not root.is_dir():
        raise DataError(f"{root} is not a folder: give a folder with one sub-folder of {kind} per class")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise DataError(f"{root} has no class sub-folders: put each class's {kind} in {root}/<class name>/")
    return names


def files_under(folder: Path, suffixes: Sequence[str] | None = None) -> Iterator[Path]:
    """The files below `folder`, in no set order, hidden ones left out; only those ending in `suffixes` when given."""
    return (p for p in folder.rglob("*") if p.is_file()
            and (suffixes is None or p.suffix.lower() in suffixes)
            and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def require_two_classes(present: Collection[str], where: str, fix: str) -> None:
    """Training data must hold examples of two classes or more: with one, a classifier learns nothing."""
    if len(present) < 2:
        held = f"only the class {next(iter(present))!r}" if present else "no class"
        raise DataError(f"{where} holds {held}; training a classifier needs examples of at least two classes: {fix}")


def modality_of(model_or_card: Any) -> str:
    return _card(model_or_card).modality


def dataset_for(
    model: Any,
    path: str | os.PathLike[str],
    *,
    train: bool = False,
    augment: bool = True,
    classes: Sequence[str] | None = None,
    skip_bad: bool = False,
    text_column: str = "text",
    label_column: str = "label",
    tokens_column: str = "tokens",
    labels_column: str = "labels",
) -> Dataset[Any]:
    """A labelled dataset at `path`, prepared for `model` (a zoo model or its card).

    Args:
        train: the training split: it must hold examples of at least two classes; random
            augmentation (images, audio crops) when `augment`; and for a text model without a
            tokenizer, a tokenizer trained on these texts.
        classes: class names in index order (a validation split passes ``train.classes``).
        skip_bad: leave out files that cannot be read or decoded (with a warning) instead of
            failing when one is read; a class left without files is still an error.
        text_column, label_column: the columns of a text table.
        tokens_column, labels_column: the keys of a token-labelled JSONL file, for a model whose
            task is ``token-classification`` (it reads `zoo.data.tokens` files).

    The dataset has ``classes``, ``collate_fn`` (or None), ``augments`` and (but for
    token-labelled sentences) ``fingerprint``.
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
    from .tokens import TokenTable

    table: TextTable | TokenTable
    if card.task == "token-classification":
        table = TokenTable(path, tokens_column=tokens_column, labels_column=labels_column, classes=classes,
                           train=train)
        texts = [" ".join(words) for words in table.sentences]
    else:
        table = TextTable(path, text_column=text_column, label_column=label_column, classes=classes, train=train)
        texts = table.texts
    table.set_tokenizer(_tokenizer(model, texts if train else None))
    return table


def _tokenizer(model: Any, train_texts: Sequence[str] | None) -> Any:
    """The text model's tokenizer; one trained on `train_texts` for a model (not a card) that has none."""
    from .text import tokenizer_for

    if isinstance(model, ModelCard):
        return tokenizer_for(model)
    return tokenizer_for(model, train_texts=train_texts)


def _card(model_or_card: Any) -> ModelCard:
    if isinstance(model_or_card, ModelCard):
        return model_or_card
    card: ModelCard | None = getattr(model_or_card, "zoo_card", None)
    if card is None:
        raise DataError(f"cannot tell how to prepare data for a {type(model_or_card).__name__}: give a model made "
                        "by zoo.create (it carries its card) or a zoo.ModelCard")
    return card
