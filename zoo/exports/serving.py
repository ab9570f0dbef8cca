"""The files beside an exported model that a serving stack reads: ``serving.json`` and the tokenizer.

``serving.json`` holds everything needed to prepare inputs and read outputs without zoo or
torch: the model file and its format, the inputs (names, dtypes, shapes with named free
dimensions) and outputs, the preprocessing (image size, resize, crop, mean, std, interpolation;
the tokenizer file, maximum length and lowercasing; the sample rate, clip length and mono
mixing), the class names, and the card (so ``zoo.pipeline(folder)`` rebuilds the same steps).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..cards import AudioInput, ImageInput, ModelCard, TextInput
from ..errors import WeightsError
from ..files import write_text_atomic
from .inputs import ExampleInputs

SERVING_NAME = "serving.json"
TOKENIZER_NAME = "tokenizer.json"
SERVING_FORMAT = 1


def preprocessing(card: ModelCard, tokenizer_file: str | None) -> dict[str, Any]:
    """How inputs are prepared for this card's model, as plain JSON values."""
    spec = card.input_for()
    if isinstance(spec, ImageInput):
        return {"kind": "image", "size": spec.size, "resize_size": spec.resize_size or spec.size,
                "crop": "center", "mean": list(spec.mean), "std": list(spec.std),
                "interpolation": spec.interpolation, "channels": "RGB", "layout": "NCHW", "scale": "0-1"}
    if isinstance(spec, TextInput):
        return {"kind": "text", "tokenizer": tokenizer_file, "max_length": spec.max_length,
                "lowercase": spec.lowercase, "padding": "longest, after the tokens (attention_mask 0)"}
    if isinstance(spec, AudioInput):
        return {"kind": "audio", "sample_rate": spec.sample_rate, "clip_seconds": spec.clip_seconds,
                "mono": spec.mono, "padding": "zeros after each clip; lengths gives each clip's samples"}
    return {"kind": card.modality}


def serving_config(card: ModelCard, *, fmt: str, model_file: str, inputs: ExampleInputs,
                   output_names: Sequence[str], labels: Sequence[str] | None,
                   tokenizer_file: str | None) -> dict[str, Any]:
    """The content of ``serving.json`` for an exported model."""
    extra = {k: v for k, v in card.extra.items() if k not in ("weights_location", "tokenizer")}
    saved = ModelCard.from_dict({**card.to_dict(), "extra": extra})
    return {
        "zoo": {"format": SERVING_FORMAT, "version": __version__},
        "model_file": model_file,
        "export_format": fmt,
        "name": card.name,
        "task": card.task,
        "modality": card.modality,
        "inputs": [{"name": name, "dtype": str(tensor.dtype).removeprefix("torch."),
                    "shape": [axes.get(i, size) for i, size in enumerate(tensor.shape)]}
                   for name, tensor, axes in zip(inputs.names, inputs.tensors, inputs.free)],
        "outputs": list(output_names),
        "preprocessing": preprocessing(card, tokenizer_file),
        "labels": list(labels) if labels else None,
        "card": saved.to_dict(),
    }


def write_serving(directory: Path, config: dict[str, Any]) -> Path:
    path = directory / SERVING_NAME
    write_text_atomic(path, json.dumps(config, indent=2) + "\n")
    return path


def read_serving(directory: str | Path) -> dict[str, Any]:
    """The ``serving.json`` of an exported model's folder."""
    path = Path(directory).expanduser() / SERVING_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path} cannot be read as an exported model's serving file: {exc}") from None
    if not isinstance(config, dict) or "model_file" not in config or "card" not in config:
        raise WeightsError(f"{path} is not a zoo serving file (no 'model_file' or 'card'); export the model again")
    return config


def is_export_folder(path: str | Path) -> bool:
    """Whether `path` is a folder `zoo.export` wrote (it holds ``serving.json``)."""
    folder = Path(path).expanduser()
    return folder.is_dir() and (folder / SERVING_NAME).is_file()
