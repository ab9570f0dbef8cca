"""What ``zoo predict`` gives a model: texts, image files or audio files, prepared as its training data was.

Imported only when ``zoo predict`` runs (it imports torch and the readers of every modality).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TypeAlias

import torch
from PIL import Image
from torch import nn

from ..cards import AudioInput, card_of
from ..data.audio import collate_audio, load_audio
from ..data.images import image_transform, to_rgb
from ..data.text import tokenizer_for
from ..errors import DataError, InvalidArgumentError

Batch: TypeAlias = "tuple[torch.Tensor, ...] | dict[str, torch.Tensor]"


def model_inputs(model: nn.Module, inputs: Sequence[str]) -> Batch:
    """One batch of `inputs` for `model`: texts for a text model, else paths of image or audio files."""
    modality = card_of(model).modality
    if modality != "text":
        missing = [path for path in inputs if not os.path.isfile(path)]
        if missing:
            raise DataError(f"no such file: {', '.join(missing)}")
    return _PREPARE[modality](model, inputs)


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
