"""Saved speech encoders that plain transformers loads: its config keys and tensor names, and the way back.

`zoo.save_pretrained` calls these through the cards' ``extra``: ``saved_state`` (`transformers_state`) renames
torchaudio's module names to those of transformers' wav2vec2 / HuBERT / WavLM classes (WavLM's packed
``in_proj`` split into q/k/v) or says why transformers has no class computing the same thing;
``saved_config`` (`transformers_config`) writes ``model_type``, ``architectures``, the labels and the encoder's
fields beside zoo's keys; ``saved_state_reader`` (`zoo_state`) renames such a file back when zoo loads it.

The classes: ``*Model`` for feature extraction (``last_hidden_state`` is zoo's output), ``*ForCTC`` for
speech recognition (``pad_token_id`` is the CTC blank), and ``*ForSequenceClassification`` for clip
classification. transformers projects every frame and then averages; zoo averages and then projects, which is
the same affine map; a zoo head without a projection is written with an identity projection
(``classifier_proj_size`` = the hidden size), so the logits agree up to rounding.

Models that standardise each clip themselves (``normalize_waveform``: the layer-norm extractors) expect
transformers' feature extractor to do it (``do_normalize=True``), as the published checkpoints' do.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from zoo import ModelCard

from .keymaps import hf_encoder_state, hf_state

CLASS_PREFIX = {"wav2vec2": "Wav2Vec2", "hubert": "Hubert", "wavlm": "WavLM"}
_CLASS_SUFFIX = {"feature-extraction": "Model", "automatic-speech-recognition": "ForCTC",
                 "audio-classification": "ForSequenceClassification"}
# torchaudio's default feature extractor: (channels, kernel, stride) per convolution
_DEFAULT_CONV = [[512, 10, 5]] + [[512, 3, 2]] * 4 + [[512, 2, 2]] * 2
_WAVLM_QKV = re.compile(r"^(layers\.\d+\.attention)\.attention\.in_proj_(weight|bias)$")
_WAVLM_OUT = re.compile(r"^(layers\.\d+\.attention)\.attention\.out_proj\.(.*)$")


def model_type(card: ModelCard) -> str | None:
    """The transformers model type of the card's encoder (``wav2vec2``, ``hubert`` or ``wavlm``)."""
    found = card.extra.get("hf_model_type") or card.family
    return found if isinstance(found, str) and found in CLASS_PREFIX else None


def refusal(card: ModelCard) -> str | None:
    """Why transformers has no class that computes what this model computes, or None when it has one."""
    kind = model_type(card)
    if kind is None:
        return f"transformers has no model type for this encoder (family {card.family!r})"
    if (kind == "wavlm") != (card.defaults.get("model_type") == "wavlm"):
        return f"its attention ({card.defaults.get('model_type')!r}) is not {kind}'s"
    if card.task not in _CLASS_SUFFIX:
        return f"task {card.task!r} has no transformers class here"
    if card.task != "feature-extraction" and not card.class_count():
        return f"the {card.task} head was removed (num_classes=0); save it for feature extraction instead"
    return None


def architecture(card: ModelCard) -> str:
    kind = model_type(card)
    assert kind is not None
    return CLASS_PREFIX[kind] + _CLASS_SUFFIX[card.task]


def transformers_config(card: ModelCard, labels: Sequence[str] | None) -> dict[str, Any]:
    """transformers' config keys for the saved speech model ({} when `refusal` finds no transformers class)."""
    if refusal(card) is not None:
        return {}
    kind = model_type(card)
    d = card.defaults
    conv = d.get("extractor_conv_layer_config") or _DEFAULT_CONV
    config: dict[str, Any] = {
        "model_type": kind, "architectures": [architecture(card)],
        "feat_extract_norm": str(d.get("extractor_mode", "group_norm")).removesuffix("_norm"),
        "feat_extract_activation": "gelu", "hidden_act": "gelu", "layer_norm_eps": 1e-5,
        "conv_dim": [int(c[0]) for c in conv], "conv_kernel": [int(c[1]) for c in conv],
        "conv_stride": [int(c[2]) for c in conv], "num_feat_extract_layers": len(conv),
        "conv_bias": bool(d.get("extractor_conv_bias", False)), "hidden_size": d["encoder_embed_dim"],
        "feat_proj_dropout": d.get("encoder_projection_dropout", 0.0), "feat_proj_layer_norm": True,
        "num_conv_pos_embeddings": d["encoder_pos_conv_kernel"],
        "num_conv_pos_embedding_groups": d["encoder_pos_conv_groups"],
        "num_hidden_layers": d["encoder_num_layers"], "num_attention_heads": d["encoder_num_heads"],
        "attention_dropout": d.get("encoder_attention_dropout", 0.0),
        "intermediate_size": d["encoder_ff_interm_features"],
        "activation_dropout": d.get("encoder_ff_interm_dropout", 0.0),
        "hidden_dropout": d.get("encoder_dropout", 0.0),
        "do_stable_layer_norm": bool(d.get("encoder_layer_norm_first", False)),
        "layerdrop": d.get("encoder_layer_drop", 0.0), "final_dropout": d.get("head_dropout", 0.0),
        "use_weighted_layer_sum": False,
    }
    if kind == "wavlm":
        config["num_buckets"] = d.get("encoder_num_buckets", 320)
        config["max_bucket_distance"] = d.get("encoder_max_distance", 800)
    classes = card.class_count() or 0
    if card.task == "automatic-speech-recognition":
        config["vocab_size"] = classes
        config["pad_token_id"] = int(d.get("blank", 0))
    elif card.task == "audio-classification":
        config["classifier_proj_size"] = int(d.get("head_projection") or d["encoder_embed_dim"])
        names = list(labels) if labels and len(labels) == classes else [f"LABEL_{i}" for i in range(classes)]
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
    return config


def transformers_state(card: ModelCard, state: Mapping[str, Tensor]) -> dict[str, Tensor] | str:
    """zoo's state dict in transformers' names for the card's class, or the reason (`refusal`) there is none."""
    reason = refusal(card)
    if reason is not None:
        return reason
    kind = model_type(card)
    base = f"{kind}."
    out: dict[str, Tensor] = {}
    for key, tensor in state.items():
        if key.startswith("feature_extractor."):
            out[base + key] = tensor
        elif key.startswith("encoder.feature_projection."):
            out[base + key[len("encoder."):]] = tensor
        elif key.startswith("encoder.transformer."):
            rest = key[len("encoder.transformer."):]
            packed, split_out = _WAVLM_QKV.match(rest), _WAVLM_OUT.match(rest)
            if packed:
                for name, part in zip("qkv", tensor.chunk(3, dim=0)):
                    out[f"{base}encoder.{packed[1]}.{name}_proj.{packed[2]}"] = part.contiguous()
            elif split_out:
                out[f"{base}encoder.{split_out[1]}.out_proj.{split_out[2]}"] = tensor
            else:
                out[f"{base}encoder.{rest}"] = tensor
        elif key.startswith("ctc_head."):
            out["lm_head." + key[len("ctc_head."):]] = tensor
        elif key.startswith("classifier.0."):
            out["projector." + key[len("classifier.0."):]] = tensor
        elif key.startswith("classifier.1."):
            out["classifier." + key[len("classifier.1."):]] = tensor
        elif key.startswith("classifier."):
            out[key] = tensor
        else:
            return f"tensor {key!r} has no place in transformers' {architecture(card)}"
    if card.task == "audio-classification" and "projector.weight" not in out:
        weight = out["classifier.weight"]
        width = weight.shape[1]
        out["projector.weight"] = torch.eye(width, dtype=weight.dtype)
        out["projector.bias"] = torch.zeros(width, dtype=weight.dtype)
    return out


def zoo_state(card: ModelCard, state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A file `transformers_state` wrote, in zoo's names again (an identity projection folded into the head)."""
    if card.task == "feature-extraction":
        return hf_encoder_state(state)
    out = hf_state(state)
    if card.task == "audio-classification" and not card.defaults.get("head_projection") \
            and "classifier.0.weight" in out:
        w0, b0 = out.pop("classifier.0.weight"), out.pop("classifier.0.bias")
        w1, b1 = out.pop("classifier.1.weight"), out.pop("classifier.1.bias")
        out["classifier.weight"] = w1 @ w0
        out["classifier.bias"] = w1 @ b0 + b1
    return out
