"""`TransformersModel`: a transformers model behind zoo's calling convention, returning plain tensors.

The wrapper adopts the transformers model's own submodules, parameters and buffers (the same
dictionaries, not copies), so its state dict has exactly transformers' key names: a checkpoint written
by transformers loads as it is, and one zoo saves loads in transformers. Replacing a submodule through
the wrapper (a new head, a LoRA layer) replaces it in the transformers model too.

Inputs are those zoo's pipelines and trainer pass to every model of a modality:

* text: ``forward(input_ids, attention_mask=None, token_type_ids=None)``;
* image: ``forward(pixel_values)``, an ``NCHW`` float batch, already normalised;
* audio: ``forward(waveforms, lengths=None)``, ``[B, samples]`` at the card's sample rate; the
  checkpoint's feature-extractor settings (per-clip normalisation, attention mask, AST's filter banks)
  are applied here, so raw waveforms go in.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zoo.features import take_indices

from .pooling import pool_tokens

_POOLINGS = ("cls", "mean", "max", "lasttoken")


class TransformersModel(nn.Module):
    """A transformers ``PreTrainedModel`` for one task; ``forward`` returns logits or pooled features."""

    def __init__(self, inner: nn.Module, *, task: str, modality: str, pooling: str | None = None,
                 normalize: bool = False, num_classes: int = 0, num_features: int | None = None,
                 audio: Mapping[str, Any] | None = None, num_layers: int | None = None) -> None:
        super().__init__()
        # The same dictionaries as the transformers model: its keys are ours, a replaced child is replaced there.
        self._parameters = inner._parameters
        self._buffers = inner._buffers
        self._non_persistent_buffers_set = inner._non_persistent_buffers_set
        self._modules = inner._modules
        object.__setattr__(self, "transformers_model", inner)  # not a child: its children are ours already
        self.task = task
        self.modality = modality
        self.normalize = normalize
        self.audio = dict(audio or {})
        self.num_features = num_features
        self.intermediate_count = num_layers
        if task == "feature-extraction":
            pooling = pooling or ("mean" if modality == "text" else None)
            if modality == "text" and pooling not in _POOLINGS:
                raise ValueError(f"text pooling must be one of {_POOLINGS}, got {pooling!r}")
            self.pooling = pooling
            self._modules["head"] = nn.Linear(num_features or 0, num_classes) if num_classes else nn.Identity()
        else:
            self.pooling = None

    # ------------------------------------------------------------------ modes and copies

    def train(self, mode: bool = True) -> TransformersModel:
        super().train(mode)
        self.transformers_model.training = mode  # the wrapped model's own flag, read by its forward
        return self

    # ------------------------------------------------------------------ inputs

    def _inputs(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The keyword arguments the transformers model takes, from zoo's inputs for this modality."""
        if self.modality == "text":
            names = ("input_ids", "attention_mask", "token_type_ids")
            given = {**dict(zip(names, args)), **kwargs}
            return {k: v for k, v in given.items() if v is not None}
        if self.modality == "image":
            pixels = args[0] if args else kwargs.get("pixel_values", kwargs.get("images"))
            return {"pixel_values": pixels}
        waveforms = args[0] if args else kwargs.get("waveforms", kwargs.get("input_values"))
        lengths = args[1] if len(args) > 1 else kwargs.get("lengths")
        return audio_inputs(waveforms, lengths, self.audio)

    def _frames_mask(self, inputs: Mapping[str, Any], hidden: torch.Tensor) -> torch.Tensor | None:
        """Which of an audio encoder's output frames are real (for pooling), or None when all are."""
        mask = inputs.get("attention_mask")
        if mask is None or self.modality != "audio" or "conv_kernel" not in self.audio:
            return None
        lengths = mask.sum(dim=1)
        for kernel, stride in zip(self.audio["conv_kernel"], self.audio["conv_stride"]):
            lengths = torch.div(lengths - kernel, stride, rounding_mode="floor") + 1
        return torch.arange(hidden.shape[1], device=hidden.device)[None, :] < lengths[:, None]

    # ------------------------------------------------------------------ forward

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        inputs = self._inputs(*args, **kwargs)
        if self.task != "feature-extraction":
            logits = self.transformers_model(**inputs, return_dict=True).logits
            if self.task == "text-classification" and logits.dim() == 3:
                # the whole classification head (RoBERTa-style: dense, activation, output layer) was removed
                # (num_classes=0): what it read is every token's state, and it pooled the first token's
                return logits[:, 0]
            return logits
        return self._modules["head"](self.forward_pooled(*args, **kwargs))

    def forward_pooled(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """Feature extraction: one vector per example (the checkpoint's pooling), before the head."""
        inputs = self._inputs(*args, **kwargs)
        out = self.transformers_model.base_model(**inputs, return_dict=True)
        pooled = self._pool(out, inputs)
        return F.normalize(pooled, p=2.0, dim=-1) if self.normalize else pooled

    def _pool(self, out: Any, inputs: Mapping[str, Any]) -> torch.Tensor:
        hidden = out.last_hidden_state
        if self.modality == "text":
            return pool_tokens(hidden, inputs.get("attention_mask"), str(self.pooling))
        if self.modality == "audio":
            return pool_tokens(hidden, self._frames_mask(inputs, hidden), "mean")
        pooler = getattr(out, "pooler_output", None)
        if isinstance(pooler, torch.Tensor):
            return pooler.flatten(1)
        return hidden[:, 0] if hidden.dim() == 3 else hidden.mean(dim=(2, 3))

    def forward_features(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The encoder's last hidden states (``[B, T, D]``, or ``[B, C, H, W]`` for convolutional image models)."""
        inputs = self._inputs(*args, **kwargs)
        return self.transformers_model.base_model(**inputs, return_dict=True).last_hidden_state

    @property
    def num_intermediates(self) -> int:
        """The encoder layers (stages) `forward_intermediates` chooses from."""
        if self.intermediate_count is None:
            raise RuntimeError("this model was built without knowing its depth")
        return self.intermediate_count

    def forward_intermediates(self, *args: Any, indices: int | Sequence[int] | None = None,
                              intermediates_only: bool = False, **kwargs: Any,
                              ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Hidden states after the encoder layers at `indices` (timm's semantics), from transformers'
        ``output_hidden_states``; ``(last hidden states, list)`` unless `intermediates_only`."""
        taken = take_indices(self.num_intermediates, indices, what="encoder layers")
        inputs = self._inputs(*args, **kwargs)
        out = self.transformers_model.base_model(**inputs, output_hidden_states=True, return_dict=True)
        states = out.hidden_states[-self.num_intermediates:]
        found = [states[i] for i in taken]
        return found if intermediates_only else (out.last_hidden_state, found)

    def pooled_intermediates(self, *args: Any, indices: int | Sequence[int] | None = None,
                             **kwargs: Any) -> list[torch.Tensor]:
        """`forward_intermediates` pooled to one vector per example (mean over real tokens or frames)."""
        inputs = self._inputs(*args, **kwargs)
        found = self.forward_intermediates(*args, indices=indices, intermediates_only=True, **kwargs)
        out = []
        for hidden in found:
            if hidden.dim() == 4:
                out.append(hidden.mean(dim=(2, 3)))
            elif self.modality == "text":
                out.append(pool_tokens(hidden, inputs.get("attention_mask"), "mean"))
            else:
                out.append(pool_tokens(hidden, self._frames_mask(inputs, hidden), "mean"))
        return out


# ---------------------------------------------------------------------------- audio front end


def audio_inputs(waveforms: torch.Tensor, lengths: torch.Tensor | None, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a transformers audio model takes, made from raw waveforms as its feature extractor would."""
    if waveforms.dim() == 3:
        waveforms = waveforms.mean(dim=1)  # [B, channels, samples]: mixed to mono
    mask = None
    if lengths is not None:
        mask = (torch.arange(waveforms.shape[1], device=waveforms.device)[None, :]
                < lengths.to(waveforms.device)[:, None])
    if settings.get("filterbank"):
        return {"input_values": filterbanks(waveforms, lengths, settings)}
    values = waveforms
    if settings.get("do_normalize"):
        values = normalised(values, mask)
    inputs: dict[str, Any] = {"input_values": values}
    if mask is not None and settings.get("attention_mask", False):
        inputs["attention_mask"] = mask.long()
    return inputs


def normalised(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Each clip scaled to zero mean and unit variance over its real samples (padding set to 0)."""
    if mask is None:
        mean = values.mean(dim=1, keepdim=True)
        var = values.var(dim=1, keepdim=True, unbiased=False)
        return (values - mean) / torch.sqrt(var + 1e-7)
    weights = mask.to(values.dtype)
    count = weights.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (values * weights).sum(dim=1, keepdim=True) / count
    var = (((values - mean) * weights) ** 2).sum(dim=1, keepdim=True) / count
    return ((values - mean) / torch.sqrt(var + 1e-7)) * weights


def filterbanks(waveforms: torch.Tensor, lengths: torch.Tensor | None, settings: Mapping[str, Any]) -> torch.Tensor:
    """Kaldi-style log mel filter banks, cut or padded to ``max_length`` frames and normalised
    (the Audio Spectrogram Transformer's input)."""
    # on CPU: the module makes a constant tensor when first imported, which a meta-device build would leave empty
    with torch.device("cpu"):
        import torchaudio.compliance.kaldi as kaldi

    bins, frames = int(settings["num_mel_bins"]), int(settings["max_length"])
    rate = int(settings.get("sampling_rate", 16000))
    out = []
    for i, wave in enumerate(waveforms):
        if lengths is not None:
            wave = wave[: int(lengths[i])]
        bank = kaldi.fbank(wave[None].float(), htk_compat=True, sample_frequency=rate, use_energy=False,
                           window_type="hanning", num_mel_bins=bins, dither=0.0, frame_shift=10)
        if bank.shape[0] < frames:
            bank = F.pad(bank, (0, 0, 0, frames - bank.shape[0]))
        out.append(bank[:frames])
    batch = torch.stack(out).to(waveforms.dtype)
    if settings.get("do_normalize", True):
        batch = (batch - float(settings["mean"])) / (float(settings["std"]) * 2)
    return batch


def frames_after_convs(samples: int, kernels: Sequence[int], strides: Sequence[int]) -> int:
    """Output frames of a stack of unpadded 1-d convolutions over `samples` inputs."""
    for kernel, stride in zip(kernels, strides):
        samples = math.floor((samples - kernel) / stride) + 1
    return samples
