"""An exported ONNX model as a module: an onnxruntime session behind the call a zoo model answers.

`OnnxModel` takes the inputs a zoo model of its modality takes (``pixel_values``; ``input_ids``
and ``attention_mask``; ``waveforms`` and ``lengths``), positionally or by name, and returns the
first output as a tensor. It carries the exported model's card, so ``zoo.pipeline`` prepares
inputs for it as for the model it came from.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..cards import ModelCard, attach_card
from ..errors import InvalidArgumentError, ZooError
from ..weights.formats import inside_folder
from .serving import SERVING_NAME, TOKENIZER_NAME, read_serving

ONNX_FORMAT = "onnx"


def onnxruntime_module() -> Any:
    """onnxruntime, or a `ZooError` saying how to install it."""
    try:
        import onnxruntime  # type: ignore[import-untyped]  # reason: optional (the export extra)
    except ImportError:
        raise ZooError("running an ONNX model needs onnxruntime: pip install 'zoo-models[export]' "
                       "(or pip install onnxruntime)") from None
    return onnxruntime


def session(path: str | Path, *, threads: int | None = None) -> Any:
    """An onnxruntime CPU session of the model file at `path`."""
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel(nn.Module):
    """An onnxruntime session called like the zoo model it was exported from."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.session = session(self.path, threads=threads)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        given = {**dict(zip(self.input_names, args)), **kwargs}
        missing = [name for name in self.input_names if given.get(name) is None]
        if missing:
            raise InvalidArgumentError(f"the ONNX model {self.path.name} takes {', '.join(self.input_names)}; "
                                       f"missing {', '.join(missing)}")
        feed = {name: _array(given[name]) for name in self.input_names}
        return torch.from_numpy(np.asarray(self.session.run(None, feed)[0]))


def _array(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)


def load_onnx_model(directory: str | Path, *, model_file: str | None = None, threads: int | None = None) -> OnnxModel:
    """The ONNX model `zoo.export` wrote to `directory`, with its card (and tokenizer, for text)."""
    folder = Path(directory).expanduser()
    config = read_serving(folder)
    if config.get("export_format") != ONNX_FORMAT:
        raise InvalidArgumentError(f"{folder} holds a {config.get('export_format')} export; zoo.pipeline runs "
                                   "ONNX exports (export with format='onnx')")
    # serving.json is data: the model file it names must be a file of this folder, not a path elsewhere.
    name = model_file or config["model_file"]
    model = OnnxModel(inside_folder(folder, str(name), what=f"{folder / SERVING_NAME} ('model_file')"),
                      threads=threads)
    card = ModelCard.from_dict(config["card"])
    if (folder / TOKENIZER_NAME).is_file():  # the text family finds a tokenizer beside the weights
        card = dataclasses.replace(card, extra={**card.extra, "weights_location": str(folder)})
    if config.get("labels"):
        card = dataclasses.replace(card, extra={**card.extra, "labels": list(config["labels"])})
    attach_card(model, card)
    return model
