"""Checkpoints from other implementations into this plugin's module names.

- torchaudio bundle files: older files name the positional convolution's weight norm
  ``weight_g``/``weight_v``; the CTC bundles carry three unused fairseq symbols in their
  output layer (rows 1-3), which torchaudio also drops.
- Hugging Face ``transformers`` checkpoints of ``Wav2Vec2*``, ``Hubert*`` and ``WavLM*``
  (base models, ``ForPreTraining``, ``ForCTC``, ``ForSequenceClassification``): names
  below ``wav2vec2.``/``hubert.``/``wavlm.`` map onto torchaudio's layout; WavLM's
  separate q/k/v projections are concatenated into one ``in_proj``; pretraining-only
  tensors (quantizer, projections, mask embedding) are dropped.

Each ``*_state`` function takes and returns a state dict; ``hf_config_to_*`` turn a
``config.json`` dict into builder keywords. Cards name them in ``extra`` and in
``WeightsCard.key_map``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from zoo import WeightsError

_HF_PREFIXES = ("wav2vec2.", "hubert.", "wavlm.")
_HF_DROPPED = ("masked_spec_embed", "quantizer.", "project_hid.", "project_q.", "label_embeddings_concat",
               "final_proj.", "dropout_features.")
# fairseq's dictionary puts <s>, <pad>, </s>, <unk> first; CTC training used the first as blank and never the
# next three. Hugging Face's English vocabularies keep <pad> (the blank) and then <s>, </s>, <unk> likewise.
UNUSED_CTC_ROWS = (1, 2, 3)
FAIRSEQ_CTC_ROWS = 32  # the English character set (29 with the blank) plus those three


def _weight_norm_names(key: str) -> str:
    key = re.sub(r"pos_conv_embed\.conv\.weight_g$", "pos_conv_embed.conv.parametrizations.weight.original0", key)
    return re.sub(r"pos_conv_embed\.conv\.weight_v$", "pos_conv_embed.conv.parametrizations.weight.original1", key)


def _drop_rows(tensor: Tensor, rows: tuple[int, ...]) -> Tensor:
    keep = [i for i in range(tensor.shape[0]) if i not in rows]
    return tensor[keep]


def torchaudio_encoder_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A torchaudio bundle file (encoder only) -> `SpeechEncoder` / `SpeechClassifier` names."""
    return {_weight_norm_names(k): v for k, v in state.items() if not k.startswith("aux.")}


def torchaudio_ctc_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A torchaudio CTC bundle file -> `SpeechRecognizer` names, output rows as ``get_labels()`` lists them."""
    out = {}
    for key, value in state.items():
        key = _weight_norm_names(key)
        if key.startswith("aux."):
            key = "ctc_head." + key[len("aux."):]
            if value.shape[0] == FAIRSEQ_CTC_ROWS:
                value = _drop_rows(value, UNUSED_CTC_ROWS)
        out[key] = value
    return out


def hf_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A Hugging Face wav2vec2 / HuBERT / WavLM state dict -> this plugin's module names."""
    out: dict[str, Tensor] = {}
    qkv: dict[str, dict[str, Tensor]] = {}
    has_projector = any(k.startswith("projector.") for k in state)
    for key, value in state.items():
        for prefix in _HF_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        if key.startswith(_HF_DROPPED):
            continue
        key = _weight_norm_names(key)
        if key.startswith("feature_projection."):
            key = "encoder." + key
        elif key.startswith("encoder."):
            key = "encoder.transformer." + key[len("encoder."):]
        elif key.startswith("lm_head."):
            key = "ctc_head." + key[len("lm_head."):]
        elif key.startswith("projector."):
            key = "classifier.0." + key[len("projector."):]
        elif key.startswith("classifier."):
            key = ("classifier.1." if has_projector else "classifier.") + key[len("classifier."):]
        elif not key.startswith("feature_extractor."):
            raise WeightsError(f"unexpected tensor {key!r} in a wav2vec2/HuBERT/WavLM checkpoint; "
                               "this checkpoint type is not supported (adapters, x-vector and weighted-layer "
                               "heads are not)")
        match = re.match(r"(encoder\.transformer\.layers\.\d+\.attention)\.([qkv])_proj\.(weight|bias)$", key)
        if match:
            qkv.setdefault(f"{match[1]}|{match[3]}", {})[match[2]] = value
            continue
        out[key] = value
    wavlm = any(k.endswith("gru_rel_pos_const") for k in out)
    for slot, parts in qkv.items():
        attention, kind = slot.split("|")
        if wavlm:  # torch.nn.MultiheadAttention inside torchaudio's WavLM attention
            out[f"{attention}.attention.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
        else:
            for name, tensor in parts.items():
                out[f"{attention}.{name}_proj.{kind}"] = tensor
    if wavlm:
        for key in [k for k in out if re.search(r"layers\.\d+\.attention\.out_proj\.", k)]:
            out[key.replace(".attention.out_proj.", ".attention.attention.out_proj.")] = out.pop(key)
    _add_missing_projection_norm(out)
    return out


def _add_missing_projection_norm(out: dict[str, Tensor]) -> None:
    """HuBERT configs with ``feat_proj_layer_norm: false`` have no norm there: insert an identity one."""
    weight = out.get("encoder.feature_projection.projection.weight")
    if weight is not None and "encoder.feature_projection.layer_norm.weight" not in out:
        out["encoder.feature_projection.layer_norm.weight"] = torch.ones(weight.shape[1], dtype=weight.dtype)
        out["encoder.feature_projection.layer_norm.bias"] = torch.zeros(weight.shape[1], dtype=weight.dtype)


def hf_encoder_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`hf_state` without any task head: any of these checkpoints loads as a feature extractor."""
    return {k: v for k, v in hf_state(state).items() if not k.startswith(("ctc_head.", "classifier."))}


def hf_ctc_english_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A Hugging Face English CTC checkpoint (32 symbols) -> the 29 labels of torchaudio's bundles."""
    out = hf_state(state)
    for key in ("ctc_head.weight", "ctc_head.bias"):
        if key in out and out[key].shape[0] == FAIRSEQ_CTC_ROWS:
            out[key] = _drop_rows(out[key], UNUSED_CTC_ROWS)
    return out


# ---------------------------------------------------------------------------- config.json -> builder keywords


def _check_supported(config: Mapping[str, Any]) -> None:
    problems = []
    if config.get("feat_extract_activation", "gelu") != "gelu" or config.get("hidden_act", "gelu") != "gelu":
        problems.append("activations other than gelu")
    if config.get("add_adapter"):
        problems.append("add_adapter")
    if config.get("conv_pos_batch_norm"):
        problems.append("conv_pos_batch_norm")
    if abs(float(config.get("layer_norm_eps", 1e-5)) - 1e-5) > 1e-12:
        problems.append(f"layer_norm_eps={config.get('layer_norm_eps')} (torchaudio's layers use 1e-5)")
    if problems:
        raise WeightsError(f"this {config.get('model_type')} checkpoint uses {', '.join(problems)}, which the "
                           "torchaudio-based speech models do not implement")


def hf_config_to_encoder_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config.json`` of a wav2vec2 / HuBERT / WavLM checkpoint -> `SpeechEncoder` keywords."""
    _check_supported(config)
    model_type = config.get("model_type")
    if model_type not in ("wav2vec2", "hubert", "wavlm"):
        raise WeightsError(f"expected a wav2vec2, hubert or wavlm config, got model_type={model_type!r}")
    norm = config.get("feat_extract_norm", "group")
    kwargs: dict[str, Any] = {
        "model_type": "wavlm" if model_type == "wavlm" else "wav2vec2",
        "extractor_mode": f"{norm}_norm",
        "extractor_conv_layer_config": [list(c) for c in zip(config["conv_dim"], config["conv_kernel"],
                                                             config["conv_stride"])],
        "extractor_conv_bias": bool(config.get("conv_bias", False)),
        "encoder_embed_dim": config["hidden_size"],
        "encoder_projection_dropout": config.get("feat_proj_dropout", 0.0),
        "encoder_pos_conv_kernel": config["num_conv_pos_embeddings"],
        "encoder_pos_conv_groups": config["num_conv_pos_embedding_groups"],
        "encoder_num_layers": config["num_hidden_layers"],
        "encoder_num_heads": config["num_attention_heads"],
        "encoder_attention_dropout": config.get("attention_dropout", 0.0),
        "encoder_ff_interm_features": config["intermediate_size"],
        "encoder_ff_interm_dropout": config.get("activation_dropout", 0.0),
        "encoder_dropout": config.get("hidden_dropout", 0.0),
        "encoder_layer_norm_first": bool(config.get("do_stable_layer_norm", False)),
        "encoder_layer_drop": config.get("layerdrop", 0.0),
        # Layer-norm feature extractors were pretrained on standardized audio (fairseq's normalize=True).
        "normalize_waveform": norm == "layer",
    }
    if model_type == "wavlm":
        kwargs["encoder_num_buckets"] = config.get("num_buckets", 320)
        kwargs["encoder_max_distance"] = config.get("max_bucket_distance", 800)
    return kwargs


def hf_config_to_classifier_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config.json`` -> `SpeechClassifier` keywords (classes from ``id2label``)."""
    if config.get("use_weighted_layer_sum"):
        raise WeightsError("checkpoints with use_weighted_layer_sum=true are not supported")
    kwargs = hf_config_to_encoder_kwargs(config)
    labels = config.get("id2label") or {}
    kwargs["num_classes"] = len(labels) or int(config.get("num_labels", 2))
    kwargs["head_dropout"] = config.get("final_dropout", 0.0)
    if any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or ()):
        kwargs["head_projection"] = config.get("classifier_proj_size", 256)
    kwargs["freeze_feature_extractor"] = True
    return kwargs


def hf_config_to_recognizer_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config.json`` -> `SpeechRecognizer` keywords (vocabulary read later from ``vocab.json``)."""
    kwargs = hf_config_to_encoder_kwargs(config)
    kwargs["num_classes"] = config["vocab_size"]
    kwargs["labels"] = None
    kwargs["blank"] = config.get("pad_token_id", 0) or 0
    kwargs["head_dropout"] = config.get("final_dropout", 0.0)
    kwargs["freeze_feature_extractor"] = True
    return kwargs
