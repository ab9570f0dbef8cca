"""``zoo.export``: a model as ONNX or a `torch.export` program, its serving files, and a parity check.

    >>> result = zoo.export("resnet18", "out/resnet18", format="onnx")
    >>> print(result)                      # the files written and the parity with eager PyTorch
    >>> zoo.pipeline("out/resnet18")("cat.jpg")   # the ONNX model through onnxruntime

Inputs are made from the card's input spec, with the batch free for every model and the
sequence (tokens, samples) free for text and audio. ``serving.json`` beside the model holds
the preprocessing, the inputs and outputs and the class names (see `zoo.exports.serving`); a
text model's tokenizer is written as ``tokenizer.json``. The exported model is run on the
example inputs and on a batch of another size (and length) and compared with eager PyTorch.

This package imports torch; (it is named ``exports`` so that it does not shadow ``zoo.export``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..cards import card_labels, card_of
from ..errors import InvalidArgumentError
from ..factory import create
from ..files import write_text_atomic
from ..names import is_saved_name, model_source
from .inputs import example_inputs
from .parity import ParityCheck, compare, parity_inputs
from .quantize import QUANTIZED_FILE, QuantizationReport, measure, quantize_int8
from .runtime import OnnxModel, load_onnx_model
from .serving import TOKENIZER_NAME, serving_config, write_serving
from .writers import ONNX_FILE, PROGRAM_FILE, ExportError, write_onnx, write_program

__all__ = ["FORMATS", "ExportError", "ExportResult", "OnnxModel", "export", "load_onnx_model"]

FORMATS = ("onnx", "exported-program")
QUANTIZATIONS = ("int8",)


@dataclass(frozen=True)
class ExportResult:
    """What `export` wrote and measured."""

    name: str
    format: str
    directory: Path
    model_file: Path
    seconds: float
    parity: tuple[ParityCheck, ...]
    quantization: QuantizationReport | None = None
    files: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """Whether the exported model agrees with eager PyTorch on every parity input."""
        return all(check.ok for check in self.parity)

    def __str__(self) -> str:
        lines = [f"exported {self.name} as {self.format} to {self.directory} in {self.seconds:.1f} s: "
                 f"{', '.join(self.files)}",
                 f"parity with eager PyTorch ({'onnxruntime' if self.format == 'onnx' else 'torch.export.load'}):"]
        lines += [f"  {check}" for check in self.parity]
        if self.quantization is not None:
            lines.append(str(self.quantization))
        return "\n".join(lines)


def export(model: str | nn.Module, out: str | Path, *, format: str = "onnx", quantize: str | None = None,
           data: str | None = None, batch: int = 2) -> ExportResult:
    """Export `model` (a name, a saved model's folder, or a module `zoo.create` made) to the folder `out`.

    `format` is ``onnx`` (checked through onnxruntime) or ``exported-program`` (``torch.export.save``,
    checked through ``torch.export.load``). ``quantize="int8"`` (ONNX only) also writes an int8 model
    and measures what it changes: top-1 accuracy on the labelled `data` when given, otherwise the output
    difference on the example inputs. A model the exporter cannot handle raises `ExportError` naming
    the operation.
    """
    if format not in FORMATS:
        raise InvalidArgumentError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise InvalidArgumentError(f"quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    if quantize is not None and format != "onnx":
        raise InvalidArgumentError(f"quantize={quantize!r} is for onnx exports (onnxruntime's CPU int8), "
                                   f"not {format}")
    module = _model(model).eval().to("cpu", torch.float32)
    card = card_of(module)
    directory = Path(out).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    inputs = example_inputs(module, card, batch=batch)
    output_names = ["logits" if card.task.endswith("classification") or card.task.startswith("automatic")
                    else "features"]
    start = time.perf_counter()
    model_file = directory / (ONNX_FILE if format == "onnx" else PROGRAM_FILE)
    if format == "onnx":
        write_onnx(module, inputs, model_file, card.name, output_names)
        runner: Any = OnnxModel(model_file)
    else:
        write_program(module, inputs, model_file, card.name)
        runner = torch.export.load(str(model_file)).module()
    seconds = time.perf_counter() - start
    files = [model_file.name]
    tokenizer = _write_tokenizer(module, directory)
    if tokenizer:
        files.append(tokenizer)
    labels = card_labels(card)
    write_serving(directory, serving_config(card, fmt=format, model_file=model_file.name, inputs=inputs,
                                            output_names=output_names, labels=labels, tokenizer_file=tokenizer))
    files.append("serving.json")
    classifier = card.task.endswith("classification") and card.task != "token-classification"
    checks = tuple(compare(module, runner, shapes, classifier=classifier)
                   for shapes in parity_inputs(module, card, inputs))
    report = None
    if quantize == "int8":
        quantize_int8(model_file, directory / QUANTIZED_FILE)
        files.append(QUANTIZED_FILE)
        report = measure(module, directory / QUANTIZED_FILE, model_file, inputs, data=data, classifier=classifier)
    return ExportResult(card.name, format, directory, model_file, seconds, checks, report, tuple(files))


def _model(model: str | nn.Module) -> nn.Module:
    """The module to export: a saved model as it was saved, a registered one with its weights when it has any."""
    if isinstance(model, nn.Module):
        return model
    if not isinstance(model, str):
        raise InvalidArgumentError(f"zoo.export takes a model name, a folder or a model, got {model!r}")
    source = model_source(model)
    if is_saved_name(source):
        return create(source)
    from .. import get_card  # reason: zoo/__init__ imports this package's users lazily; read the card only

    return create(source, pretrained=get_card(source).has_weights)


def _write_tokenizer(model: nn.Module, directory: Path) -> str | None:
    """A text model's tokenizer as ``tokenizer.json`` beside the exported model; None for other models."""
    if card_of(model).modality != "text":
        return None
    from ..data.text import tokenizer_for  # reason: the tokenizers library, only for text models

    try:
        tokenizer = tokenizer_for(model)
    except Exception:  # noqa: BLE001 - a model without a tokenizer still exports; serving.json says none
        return None
    write_text_atomic(directory / TOKENIZER_NAME, tokenizer.tokenizer.to_str())
    return TOKENIZER_NAME
