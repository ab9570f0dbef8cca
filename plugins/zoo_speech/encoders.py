"""wav2vec 2.0, HuBERT and WavLM encoders on torchaudio's modules, with task heads.

The modules keep torchaudio's names (``feature_extractor``, ``encoder.feature_projection``,
``encoder.transformer.layers.N``), so torchaudio's bundle weights load as they are, and
a Hugging Face checkpoint loads through `zoo_speech.keymaps`.

Every model takes ``(waveforms [B, T], lengths=None)``; `lengths` is ``[B]`` sample
counts or a ``[B, T]`` boolean mask (True on real audio), as `zoo.data.audio.collate_audio`
produces. Outputs:

- `SpeechEncoder` (feature-extraction): hidden states ``[B, frames, D]``, and every transformer
  layer's through `forward_intermediates` (what ``zoo.features.forward_intermediates`` calls);
- `SpeechClassifier` (audio-classification): logits ``[B, classes]`` from masked mean pooling;
- `SpeechRecognizer` (automatic-speech-recognition): CTC logits ``[B, frames, labels]``, and
  `transcribe` for greedy decoding to text.
"""
from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from zoo import InvalidArgumentError
from zoo.features import take_indices

ENCODER_KEYWORDS = (
    "extractor_mode", "extractor_conv_layer_config", "extractor_conv_bias", "encoder_embed_dim",
    "encoder_projection_dropout", "encoder_pos_conv_kernel", "encoder_pos_conv_groups", "encoder_num_layers",
    "encoder_num_heads", "encoder_attention_dropout", "encoder_ff_interm_features", "encoder_ff_interm_dropout",
    "encoder_dropout", "encoder_layer_norm_first", "encoder_layer_drop",
)
WAVLM_KEYWORDS = ("encoder_num_buckets", "encoder_max_distance")
MODEL_TYPES = ("wav2vec2", "wavlm")


def _torchaudio_model(model_type: str, params: dict[str, Any]) -> nn.Module:
    from torchaudio.models import wav2vec2_model, wavlm_model

    if model_type not in MODEL_TYPES:
        raise InvalidArgumentError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    allowed = ENCODER_KEYWORDS + (WAVLM_KEYWORDS if model_type == "wavlm" else ())
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise InvalidArgumentError(f"speech encoder ({model_type}) does not take {unknown}; it takes "
                                   f"{', '.join(allowed)}, model_type, normalize_waveform, freeze_feature_extractor")
    missing = sorted(set(allowed) - set(params))
    if missing:
        raise InvalidArgumentError(f"speech encoder ({model_type}) needs {missing}")
    factory = wavlm_model if model_type == "wavlm" else wav2vec2_model
    params = {**params, "extractor_conv_layer_config": [tuple(c) for c in params["extractor_conv_layer_config"]]}
    return factory(**params, aux_num_out=None)


def as_lengths(lengths: Tensor | None, waveforms: Tensor) -> Tensor | None:
    """Sample counts from ``[B]`` lengths or a ``[B, T]`` mask; None stays None (all samples real)."""
    if lengths is None:
        return None
    lengths = torch.as_tensor(lengths, device=waveforms.device)
    if lengths.dim() == 2:
        return lengths.to(torch.bool).sum(dim=-1)
    return lengths.to(torch.long)


def normalize_waveforms(waveforms: Tensor, lengths: Tensor | None, eps: float = 1e-5) -> Tensor:
    """Zero mean, unit variance per clip over its real samples (padding stays zero)."""
    if lengths is None:
        mean = waveforms.mean(dim=-1, keepdim=True)
        var = waveforms.var(dim=-1, unbiased=False, keepdim=True)
        return (waveforms - mean) / torch.sqrt(var + eps)
    mask = torch.arange(waveforms.shape[-1], device=waveforms.device)[None, :] < lengths[:, None]
    count = lengths.clamp(min=1)[:, None].to(waveforms.dtype)
    mean = (waveforms * mask).sum(dim=-1, keepdim=True) / count
    var = (((waveforms - mean) * mask) ** 2).sum(dim=-1, keepdim=True) / count
    return (waveforms - mean) / torch.sqrt(var + eps) * mask


class SpeechEncoder(nn.Module):
    """The encoder alone: waveforms -> hidden states ``[B, frames, D]`` (feature-extraction).

    `normalize_waveform` standardizes each clip first, as the models with a layer-norm
    feature extractor were pretrained. `freeze_feature_extractor` runs the convolutional
    feature extractor without gradients, so it stays frozen whatever `requires_grad`
    says (freezing and unfreezing strategies cannot thaw it); its parameters also start
    with ``requires_grad=False``.
    """

    def __init__(self, *, model_type: str = "wav2vec2", normalize_waveform: bool = False,
                 freeze_feature_extractor: bool = False, **params: Any):
        super().__init__()
        base = _torchaudio_model(model_type, params)
        self.feature_extractor = base.feature_extractor
        self.encoder = base.encoder
        self.model_type = model_type
        self.normalize_waveform = normalize_waveform
        self.num_features = int(params["encoder_embed_dim"])
        self.freeze_feature_extractor = freeze_feature_extractor

    @property
    def freeze_feature_extractor(self) -> bool:
        return self._freeze_feature_extractor

    @freeze_feature_extractor.setter
    def freeze_feature_extractor(self, value: bool) -> None:
        self._freeze_feature_extractor = bool(value)
        if value:
            self.feature_extractor.requires_grad_(False)

    def frame_lengths(self, lengths: Tensor) -> Tensor:
        """Output frames for clips of `lengths` samples (after the strided convolutions)."""
        for layer in self.feature_extractor.conv_layers:
            lengths = torch.div(lengths - layer.kernel_size, layer.stride, rounding_mode="floor") + 1
            lengths = torch.clamp(lengths, min=0)
        return lengths

    def _features(self, waveforms: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor | None]:
        if waveforms.dim() != 2:
            raise InvalidArgumentError(f"expected waveforms of shape [batch, samples], got {tuple(waveforms.shape)}; "
                                       "mix to mono first (zoo.data.audio.to_mono)")
        lengths = as_lengths(lengths, waveforms)
        if self.normalize_waveform:
            waveforms = normalize_waveforms(waveforms, lengths)
        frozen = torch.no_grad() if self._freeze_feature_extractor else contextlib.nullcontext()
        with frozen:
            return self.feature_extractor(waveforms, lengths)

    def _transformer(self, features: Tensor, frames: Tensor | None, *, stop: int | None = None,
                     every_layer: bool = False) -> tuple[Tensor, list[Tensor]]:
        """Run torchaudio's transformer with a padding mask that wav2vec2 and WavLM attention both take.

        Returns the encoder output (after the final norm where the model has one) and, with
        `every_layer`, each layer's output (LayerDrop then skips no layer). Layers from `stop` on do not run.
        (torchaudio's own `Encoder` builds a 4-D mask that its WavLM attention rejects.)
        """
        x = self.encoder.feature_projection(features)
        padding = None
        if frames is not None:
            padding = torch.arange(x.shape[1], device=x.device)[None, :] >= frames[:, None]
            x = x.masked_fill(padding[..., None], 0.0)
        transformer = self.encoder.transformer
        x = x + transformer.pos_conv_embed(x)
        if transformer.layer_norm_first:  # torchaudio's flag: the norm runs before the layers (post-LN models)
            x = transformer.layer_norm(x)
        x = transformer.dropout(x)
        mask_kwargs: dict[str, Any] = {}
        if padding is not None:
            if self.model_type == "wavlm":
                # additive, in the dtype of WavLM's position bias it is added to
                mask_kwargs["key_padding_mask"] = torch.zeros(padding.shape, dtype=x.dtype, device=x.device
                                                              ).masked_fill(padding, float("-inf"))
            else:
                length = x.shape[1]
                mask_kwargs["attention_mask"] = (~padding)[:, None, None, :].expand(-1, 1, length, length)
        outputs, position_bias = [], None
        for layer in transformer.layers[:stop]:
            if self.training and not every_layer and torch.rand(1).item() <= transformer.layer_drop:
                continue  # LayerDrop
            x, position_bias = layer(x, position_bias=position_bias, **mask_kwargs)
            if every_layer:
                outputs.append(x)
        return (x if transformer.layer_norm_first else transformer.layer_norm(x)), outputs

    def encode(self, waveforms: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``(hidden states [B, frames, D], frame lengths [B] or None)``."""
        features, frames = self._features(waveforms, lengths)
        return self._transformer(features, frames)[0], frames

    def extract_features(self, waveforms: Tensor, lengths: Tensor | None = None,
                         num_layers: int | None = None) -> tuple[list[Tensor], Tensor | None]:
        """Outputs of every transformer layer (up to `num_layers`), and the frame lengths."""
        features, frames = self._features(waveforms, lengths)
        return self._transformer(features, frames, stop=num_layers or None, every_layer=True)[1], frames

    def forward_features(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        """The encoder output ``[B, frames, D]`` (frames past a clip's length are padding)."""
        return self.encode(waveforms, lengths)[0]

    def forward_pooled(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Clip embeddings ``[B, D]``: the encoder output averaged over each clip's valid frames."""
        hidden, frames = self.encode(waveforms, lengths)
        return masked_mean(hidden, frames)

    @property
    def num_intermediates(self) -> int:
        """The transformer layers `forward_intermediates` chooses from."""
        return len(self.encoder.transformer.layers)

    def forward_intermediates(
        self, waveforms: Tensor, lengths: Tensor | None = None, *, indices: int | Sequence[int] | None = None,
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """Outputs ``[B, frames, D]`` of the transformer layers at `indices` (timm's semantics: None for all,
        an int for the last n, a list of indices), computed with the padding mask of `lengths`.

        Returns them in the order asked, or ``(encoder output, list)`` unless `intermediates_only` (then
        the layers after the last one asked for do not run). Layer outputs are taken before the final
        norm that some models apply to the encoder output.
        """
        taken = take_indices(self.num_intermediates, indices, what="transformer layers")
        features, frames = self._features(waveforms, lengths)
        final, every = self._transformer(features, frames, stop=max(taken) + 1 if intermediates_only else None,
                                         every_layer=True)
        found = [every[i] for i in taken]
        return found if intermediates_only else (final, found)

    def pooled_intermediates(self, waveforms: Tensor, lengths: Tensor | None = None, *,
                             indices: int | Sequence[int] | None = None) -> list[Tensor]:
        """`forward_intermediates` averaged over each clip's valid frames: ``[B, D]`` per layer."""
        taken = take_indices(self.num_intermediates, indices, what="transformer layers")
        features, frames = self._features(waveforms, lengths)
        _, every = self._transformer(features, frames, stop=max(taken) + 1, every_layer=True)
        return [masked_mean(every[i], frames) for i in taken]

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.encode(waveforms, lengths)[0]


def masked_mean(hidden: Tensor, frames: Tensor | None) -> Tensor:
    """Mean over the real frames of each clip: ``[B, F, D] -> [B, D]``."""
    if frames is None:
        return hidden.mean(dim=1)
    mask = (torch.arange(hidden.shape[1], device=hidden.device)[None, :] < frames[:, None]).to(hidden.dtype)
    return (hidden * mask[..., None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp(min=1.0)


class SpeechClassifier(SpeechEncoder):
    """Clip classification: encoder -> masked mean over frames -> dropout -> `classifier`.

    With `head_projection` the head is ``Sequential(Linear(D, p), Linear(p, classes))``,
    the layout of Hugging Face's ``*ForSequenceClassification``, so those heads load too.
    """

    def __init__(self, *, num_classes: int = 2, head_dropout: float = 0.0, head_projection: int | None = None,
                 **encoder: Any):
        super().__init__(**encoder)
        self.head_dropout = nn.Dropout(head_dropout)
        if head_projection:
            self.classifier = nn.Sequential(nn.Linear(self.num_features, head_projection),
                                            nn.Linear(head_projection, num_classes))
        else:
            self.classifier = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.classifier(self.head_dropout(self.forward_pooled(waveforms, lengths)))


class SpeechRecognizer(SpeechEncoder):
    """CTC speech recognition: encoder -> dropout -> `ctc_head` giving logits over `labels`.

    `labels` are the output symbols in order (index `blank` is the CTC blank, ``"|"`` the
    word separator); without them, `transcribe` reads ``vocab.json`` beside the weights.
    """

    def __init__(self, *, num_classes: int = 29, labels: Sequence[str] | None = None, blank: int = 0,
                 head_dropout: float = 0.0, **encoder: Any):
        super().__init__(**encoder)
        if labels is not None and len(labels) != num_classes:
            raise InvalidArgumentError(f"{len(labels)} labels given for a CTC head of {num_classes} outputs")
        self.labels = tuple(labels) if labels is not None else None
        self.blank = blank
        self.head_dropout = nn.Dropout(head_dropout)
        self.ctc_head = nn.Linear(self.num_features, num_classes)

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        hidden, _ = self.encode(waveforms, lengths)
        return self.ctc_head(self.head_dropout(hidden))

    def ctc_loss(self, waveforms: Tensor, lengths: Tensor | None, targets: Tensor,
                 target_lengths: Tensor) -> Tensor:
        """Mean CTC loss of label-index `targets` (``[B, S]``, padded) for a batch."""
        hidden, frames = self.encode(waveforms, lengths)
        log_probs = self.ctc_head(self.head_dropout(hidden)).float().log_softmax(dim=-1)
        if frames is None:
            frames = torch.full((waveforms.shape[0],), log_probs.shape[1], dtype=torch.long, device=log_probs.device)
        return nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, frames, target_lengths,
                                      blank=self.blank, zero_infinity=True)

    @torch.inference_mode()
    def transcribe(self, waveforms: Tensor, lengths: Tensor | None = None) -> list[str]:
        """Greedy CTC decoding of a batch to text."""
        from .ctc import greedy_decode, labels_for

        hidden, frames = self.encode(waveforms, lengths)
        return greedy_decode(self.ctc_head(hidden), frames, labels_for(self), blank=self.blank)


# ---------------------------------------------------------------------------- builders (named by the cards)


def build_speech_encoder(**kwargs: Any) -> SpeechEncoder:
    if "num_classes" in kwargs:
        raise InvalidArgumentError("a feature-extraction speech encoder has no classes; use its '_cls' "
                                   "(audio-classification) or '_ctc' (automatic-speech-recognition) card instead")
    return SpeechEncoder(**kwargs)


def build_speech_classifier(num_classes: int = 2, **kwargs: Any) -> SpeechClassifier:
    return SpeechClassifier(num_classes=num_classes, **kwargs)


def build_speech_recognizer(num_classes: int = 29, **kwargs: Any) -> SpeechRecognizer:
    return SpeechRecognizer(num_classes=num_classes, **kwargs)
