"""Parity of an exported model with eager PyTorch: both run on the same inputs, the outputs compared."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..cards import AudioInput, ModelCard, TextInput
from ..model_outputs import leading_tensor
from .inputs import ExampleInputs, example_inputs

RELATIVE_TOLERANCE = 1e-3
"""Outputs agree when they differ by at most this times the largest eager output (at least 1)."""


@dataclass(frozen=True)
class ParityCheck:
    """One comparison: the input shapes, the largest difference and the allowed one, top-1 agreement."""

    shapes: str
    max_difference: float
    tolerance: float
    top1_agreement: tuple[int, int] | None

    @property
    def ok(self) -> bool:
        return self.max_difference <= self.tolerance

    def __str__(self) -> str:
        top1 = f", top-1 agrees on {self.top1_agreement[0]}/{self.top1_agreement[1]}" if self.top1_agreement else ""
        verdict = "ok" if self.ok else "MISMATCH"
        return (f"{self.shapes}: max |exported - eager| = {self.max_difference:.2e} "
                f"(tolerance {self.tolerance:.1e}){top1}: {verdict}")


def first_tensor(output: Any) -> torch.Tensor:
    """`zoo.model_outputs.leading_tensor`, required: an output that holds no tensor is an error."""
    tensor = leading_tensor(output)
    if tensor is None:
        raise TypeError(f"the model returned {type(output).__name__}, which holds no tensor")
    return tensor


def parity_inputs(model: nn.Module, card: ModelCard, exported_with: ExampleInputs) -> list[ExampleInputs]:
    """The inputs the export was traced with, and a batch of 3 (longer, for text and audio): the free dims work."""
    spec = card.input_for()
    length = None
    if isinstance(spec, TextInput):
        length = min(spec.max_length, int(exported_with.tensors[0].shape[1]) + 8)
    elif isinstance(spec, AudioInput):
        length = int(exported_with.tensors[0].shape[1]) * 5 // 4
    return [exported_with, example_inputs(model, card, batch=3, length=length, seed=1)]


def compare(eager: nn.Module, exported: Callable[..., Any], inputs: ExampleInputs, *,
            classifier: bool) -> ParityCheck:
    """Run both on `inputs` and compare their leading outputs."""
    with torch.inference_mode():
        expected = first_tensor(eager(*inputs.tensors)).float()
        got = first_tensor(exported(*inputs.tensors)).float()
    shapes = ", ".join(f"{n} {list(t.shape)}" for n, t in zip(inputs.names, inputs.tensors))
    if got.shape != expected.shape:
        return ParityCheck(f"{shapes} (output {list(got.shape)}, eager {list(expected.shape)})", float("inf"), 0.0,
                           None)
    difference = float((got - expected).abs().max()) if expected.numel() else 0.0
    tolerance = RELATIVE_TOLERANCE * max(1.0, float(expected.abs().max()) if expected.numel() else 1.0)
    top1 = None
    if classifier and expected.dim() == 2:
        top1 = (int((got.argmax(-1) == expected.argmax(-1)).sum()), expected.shape[0])
    return ParityCheck(shapes, difference, tolerance, top1)
