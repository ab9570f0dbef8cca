"""int8 dynamic quantization of an exported ONNX model (onnxruntime, for CPUs), and what it changes.

Weights of matrix multiplications are stored as int8 and activations are quantized on the fly.
What it costs is measured: the top-1 accuracy before and after on labelled data when given,
otherwise the outputs' difference on the example inputs (`QuantizationReport.measured_on` says which).
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..cards import attach_card, card_of
from ..errors import ZooError
from .inputs import ExampleInputs
from .parity import first_tensor
from .runtime import OnnxModel
from .writers import quiet

QUANTIZED_FILE = "model.int8.onnx"
QUANTIZED_OPS = ("MatMul", "Gemm", "Attention", "LSTM", "GRU")
"""Operations quantized: onnxruntime runs their int8 versions on every CPU; int8 convolutions
(ConvInteger) are left out, since its CPU kernels are slower than float ones on most machines."""


@dataclass(frozen=True)
class QuantizationReport:
    """What int8 quantization changed: on `measured_on` ("data" or "example inputs"), before and after."""

    path: Path
    measured_on: str
    fp32_accuracy: float | None = None
    int8_accuracy: float | None = None
    max_difference: float | None = None
    top1_agreement: tuple[int, int] | None = None
    size_ratio: float = 1.0

    def __str__(self) -> str:
        size = f"{self.path.name} is {self.size_ratio:.0%} of the float model's size"
        if self.fp32_accuracy is not None and self.int8_accuracy is not None:
            change = (self.int8_accuracy - self.fp32_accuracy) * 100
            return (f"int8: accuracy on the given data {self.fp32_accuracy:.2%} (eager) -> {self.int8_accuracy:.2%} "
                    f"(int8), change {change:+.2f} points; {size}")
        top1 = f", top-1 agrees on {self.top1_agreement[0]}/{self.top1_agreement[1]}" if self.top1_agreement else ""
        return (f"int8: no data given, so measured on the example inputs: max |int8 - eager| = "
                f"{self.max_difference:.2e}{top1}; {size}")


def quantize_int8(source: Path, target: Path) -> None:
    """onnxruntime's dynamic int8 quantization of the ONNX file `source`, written to `target`."""
    try:
        from onnxruntime.quantization import (  # type: ignore[import-untyped]  # reason: optional (export extra)
            QuantType,
            quantize_dynamic,
        )
    except ImportError:
        raise ZooError("--quantize int8 needs onnxruntime: pip install 'zoo-models[export]'") from None
    import onnx  # reason: installed with onnxruntime's quantization tools (the export extra)

    proto = onnx.load(str(source))
    del proto.graph.value_info[:]  # the exporter's recorded shapes can disagree with onnx's inference: infer afresh
    with tempfile.TemporaryDirectory(prefix="zoo-int8-") as tmp:
        plain = Path(tmp) / source.name
        onnx.save(proto, str(plain))
        with quiet():
            quantize_dynamic(plain, target, weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANTIZED_OPS))


def measure(eager: nn.Module, path: Path, float_path: Path, inputs: ExampleInputs, *, data: str | None,
            classifier: bool) -> QuantizationReport:
    """What quantization changed: accuracy on `data` (a labelled dataset zoo reads) or outputs on `inputs`."""
    quantized = OnnxModel(path)
    attach_card(quantized, card_of(eager))
    ratio = os.path.getsize(path) / max(os.path.getsize(float_path), 1)
    if data is not None:
        return QuantizationReport(path, "data", fp32_accuracy=_accuracy(eager, data),
                                  int8_accuracy=_accuracy(quantized, data), size_ratio=ratio)
    with torch.inference_mode():
        expected = first_tensor(eager(*inputs.tensors)).float()
        got = first_tensor(quantized(*inputs.tensors)).float()
    top1 = None
    if classifier and expected.dim() == 2:
        top1 = (int((got.argmax(-1) == expected.argmax(-1)).sum()), expected.shape[0])
    return QuantizationReport(path, "example inputs", max_difference=float((got - expected).abs().max()),
                              top1_agreement=top1, size_ratio=ratio)


def _accuracy(model: nn.Module, data: str) -> float:
    """Top-1 accuracy of `model` on the labelled data at `data`, read as `zoo evaluate` reads it."""
    from ..data import dataset_for  # reason: the data readers import torchvision and tokenizers
    from ..finetune.batches import forward, logits, split_batch  # reason: zoo.finetune is only needed with data

    dataset = dataset_for(model, data)
    loader = torch.utils.data.DataLoader(dataset, batch_size=32, collate_fn=getattr(dataset, "collate_fn", None))
    right = total = 0
    with torch.inference_mode():
        for batch in loader:
            inputs, target = split_batch(batch)
            predicted = logits(forward(model, inputs)).argmax(-1)
            right += int((predicted == target).sum())
            total += int(target.numel())
    if not total:
        raise ZooError(f"{data} holds no labelled examples to measure the quantized model's accuracy on")
    return right / total

