"""The inputs a model is exported with: made from its card's input spec, with the dimensions that stay free.

Images give ``pixel_values [batch, 3, size, size]``; texts ``input_ids`` and ``attention_mask``
``[batch, sequence]``; audio ``waveforms [batch, samples]`` and ``lengths [batch]``. The batch is
free for every model, the sequence (tokens or samples) for text and audio. The second example of a
batch is padded, so the masking path is the one exported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.export import Dim

from ..cards import AudioInput, ImageInput, ModelCard, TextInput
from ..errors import ZooError

TEXT_LENGTH = 16
AUDIO_SECONDS = 1.0
_FIRST_ID = 5  # token ids from here up: clear of the usual special tokens


@dataclass(frozen=True)
class ExampleInputs:
    """Positional inputs of a forward pass, their names and the dimensions each leaves free (axis -> name)."""

    names: tuple[str, ...]
    tensors: tuple[torch.Tensor, ...]
    free: tuple[dict[int, str], ...]

    def dynamic_shapes(self) -> tuple[dict[int, Any], ...]:
        """`torch.export`'s ``dynamic_shapes``: every free dimension dynamic (the exporter finds its range)."""
        return tuple({axis: Dim.DYNAMIC for axis in axes} for axes in self.free)

    def as_numpy(self) -> dict[str, Any]:
        """The inputs by name as numpy arrays (what onnxruntime takes)."""
        return {name: tensor.numpy() for name, tensor in zip(self.names, self.tensors)}


def example_inputs(model: torch.nn.Module, card: ModelCard, *, batch: int = 2,
                   length: int | None = None, seed: int = 0) -> ExampleInputs:
    """Random inputs for `model` as its card's input spec says; `length` tokens (or samples) for text (audio)."""
    spec = card.input_for()
    generator = torch.Generator().manual_seed(seed)
    if isinstance(spec, ImageInput):
        pixels = torch.randn(batch, 3, spec.size, spec.size, generator=generator)
        return ExampleInputs(("pixel_values",), (pixels,), ({0: "batch"},))
    if isinstance(spec, TextInput):
        tokens = min(length or TEXT_LENGTH, spec.max_length)
        high = max(min(_vocab_size(model, card), 1000), _FIRST_ID + 1)
        ids = torch.randint(_FIRST_ID, high, (batch, tokens), generator=generator)
        mask = _padded_mask(batch, tokens)
        axes = {0: "batch", 1: "sequence"}
        return ExampleInputs(("input_ids", "attention_mask"), (ids, mask), (axes, dict(axes)))
    if isinstance(spec, AudioInput):
        samples = length or int(spec.sample_rate * (spec.clip_seconds or AUDIO_SECONDS))
        waves = torch.randn(batch, samples, generator=generator)
        lengths = torch.full((batch,), samples, dtype=torch.long)
        if batch > 1:
            lengths[-1] = samples - samples // 4
            waves[-1, int(lengths[-1]):] = 0
        return ExampleInputs(("waveforms", "lengths"), (waves, lengths), ({0: "batch", 1: "samples"}, {0: "batch"}))
    raise ZooError(f"model {card.name!r} has no input spec, so no example input can be made for it; its card "
                   "needs an input (zoo.ImageInput, zoo.TextInput or zoo.AudioInput)")


def _padded_mask(batch: int, tokens: int) -> torch.Tensor:
    mask = torch.ones(batch, tokens, dtype=torch.long)
    if batch > 1 and tokens > 2:
        mask[-1, tokens - tokens // 4:] = 0
    return mask


def _vocab_size(model: torch.nn.Module, card: ModelCard) -> int:
    """The token ids the model embeds: its first embedding's rows, else the card's ``vocab_size``."""
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            return int(module.num_embeddings)
    return int(card.defaults.get("vocab_size", 100))
