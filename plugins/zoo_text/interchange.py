"""Saved text encoders that plain transformers loads: its config keys and tensor names, and the way back.

`zoo.save_pretrained` calls these through the cards' ``extra``: ``saved_state`` (`transformers_state`) renames
the state dict to transformers' names (the fused ``attn.qkv`` split into query, key and value) or says why
transformers has no class computing the same thing; ``saved_config`` (`transformers_config`) writes
``model_type``, ``architectures``, the labels and the encoder's fields beside zoo's keys; and
``saved_state_reader`` (`zoo_state`) renames such a file back when zoo loads the folder.

What transformers has, for BERT, DistilBERT and RoBERTa (XLM-R, CamemBERT) encoders:

* token classification: ``*ForTokenClassification``, always;
* text classification: ``*ForSequenceClassification``, when the first token goes through a dense layer
  (tanh for BERT and RoBERTa, ReLU for DistilBERT) as in those classes, whether it sits in zoo's pooler
  (loaded from a checkpoint) or in its head (`zoo_text.transformer.DenseHead`, built fresh: the default of a
  new head on a base DistilBERT or RoBERTa checkpoint); a classifier built without one
  (``pooler_dense=False``) has no transformers class;
* feature extraction without a head: ``AutoModel``, whose ``last_hidden_state`` is zoo's
  ``forward_features`` (zoo's pooling is kept in zoo's own config).
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Mapping, Sequence
from typing import Any

from zoo import ModelCard

from .hf_checkpoints import convert_state_dict

CLASS_PREFIX = {"bert": "Bert", "distilbert": "DistilBert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta",
                "camembert": "Camembert"}
_ARCH_OF = {"bert": "bert", "distilbert": "distilbert", "roberta": "roberta", "xlm-roberta": "roberta",
            "camembert": "roberta"}
_CLASS_SUFFIX = {"text-classification": "ForSequenceClassification",
                 "token-classification": "ForTokenClassification", "feature-extraction": "Model"}
_POOLER_ACTIVATION = {"bert": "tanh", "roberta": "tanh", "distilbert": "relu"}
_POSITION_STYLE = {"bert": "absolute", "roberta": "after_padding", "distilbert": "absolute"}


def _builder_defaults() -> dict[str, Any]:
    from .transformer import TextTransformer  # torch: only when a model is saved

    return {name: p.default for name, p in inspect.signature(TextTransformer).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _settings(card: ModelCard) -> dict[str, Any]:
    return {**_builder_defaults(), **card.defaults}


def dense_in_head(settings: Mapping[str, Any]) -> bool:
    """Whether the builder put the dense layer into the head (`DenseHead`) rather than the pooler."""
    return bool(settings.get("pooler_dense") and settings.get("pooler_in_head") and settings.get("num_classes"))


def _has_dense(settings: Mapping[str, Any]) -> bool:
    """Whether the first token passes through a dense layer: in the pooler, or in a head built with the model
    (a head added later by `zoo.finetune.reset_head` to a model built without classes is a plain Linear)."""
    return bool(settings.get("pooler_dense")) and (not settings.get("pooler_in_head") or dense_in_head(settings))


def model_type(card: ModelCard) -> str | None:
    """The transformers model type of the card's encoder: the checkpoint's own, else its architecture's."""
    found = card.extra.get("hf_model_type") or card.extra.get("architecture")
    return found if isinstance(found, str) and found in CLASS_PREFIX else None


def refusal(card: ModelCard) -> str | None:
    """Why transformers has no class that computes what this model computes, or None when it has one."""
    kind = model_type(card)
    if kind is None:
        return f"transformers has no model type for this encoder (architecture {card.extra.get('architecture')!r})"
    arch = _ARCH_OF[kind]
    settings = _settings(card)
    classes = card.class_count() or 0
    if settings.get("position_style") != _POSITION_STYLE[arch]:
        return f"its position embeddings ({settings.get('position_style')!r}) are not {kind}'s"
    if arch == "distilbert" and (settings.get("layer_norm_eps") != 1e-12 or settings.get("type_vocab_size")):
        return "DistilBERT in transformers has layer_norm_eps 1e-12 and no token types"
    if card.task != "text-classification" and settings.get("pooler_dense"):
        return f"transformers' {card.task} classes have no dense pooler layer, and this model has one"
    if card.task == "feature-extraction":
        if classes:
            return "a head on pooled features has no transformers class (AutoModel returns the hidden states)"
        return None
    if not classes:
        return f"the {card.task} head was removed (num_classes=0); save it for feature extraction instead"
    if card.task == "token-classification":
        return None
    if card.task != "text-classification":
        return f"task {card.task!r} has no transformers class here"
    if settings.get("pooling") not in (None, "cls") or settings.get("normalize"):
        return "its classifier reads pooled features other than the first token's"
    if not _has_dense(settings) or settings.get("pooler_activation") != _POOLER_ACTIVATION[arch]:
        return (f"{CLASS_PREFIX[kind]}ForSequenceClassification passes the first token through a dense layer with "
                f"{_POOLER_ACTIVATION[arch]} before the classifier, and this model has no such layer "
                "(built with pooler_dense=False, or given a plain Linear head after it was built without classes)")
    return None


def architecture(card: ModelCard) -> str:
    kind = model_type(card)
    assert kind is not None
    return CLASS_PREFIX[kind] + _CLASS_SUFFIX[card.task]


# ---------------------------------------------------------------------------- config.json


def transformers_config(card: ModelCard, labels: Sequence[str] | None) -> dict[str, Any]:
    """transformers' config keys for the saved encoder ({} when `refusal` finds no transformers class)."""
    if refusal(card) is not None:
        return {}
    kind = model_type(card)
    assert kind is not None
    s = _settings(card)
    if kind == "distilbert":
        config: dict[str, Any] = {
            "vocab_size": s["vocab_size"], "dim": s["hidden_size"], "n_layers": s["num_layers"],
            "n_heads": s["num_heads"], "hidden_dim": s["intermediate_size"],
            "max_position_embeddings": s["max_positions"], "pad_token_id": s["pad_token_id"],
            "activation": s["hidden_act"], "dropout": s["dropout"], "attention_dropout": s["attention_dropout"],
            "sinusoidal_pos_embds": False,
        }
        head_dropout = s.get("classifier_dropout")
        config["seq_classif_dropout"] = s["dropout"] if head_dropout is None else head_dropout
    else:
        config = {
            "vocab_size": s["vocab_size"], "hidden_size": s["hidden_size"], "num_hidden_layers": s["num_layers"],
            "num_attention_heads": s["num_heads"], "intermediate_size": s["intermediate_size"],
            "max_position_embeddings": s["max_positions"], "type_vocab_size": s["type_vocab_size"],
            "pad_token_id": s["pad_token_id"], "layer_norm_eps": s["layer_norm_eps"], "hidden_act": s["hidden_act"],
            "hidden_dropout_prob": s["dropout"], "attention_probs_dropout_prob": s["attention_dropout"],
            "classifier_dropout": s.get("classifier_dropout"), "position_embedding_type": "absolute",
        }
    config["model_type"] = kind
    config["architectures"] = [architecture(card)]
    classes = card.class_count() or 0
    if card.task != "feature-extraction":
        names = list(labels) if labels and len(labels) == classes else [f"LABEL_{i}" for i in range(classes)]
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
    return config


# ---------------------------------------------------------------------------- tensors

_BERT_LAYER = [
    ("attn.proj.", "attention.output.dense."), ("attn_norm.", "attention.output.LayerNorm."),
    ("mlp.fc1.", "intermediate.dense."), ("mlp.fc2.", "output.dense."), ("mlp_norm.", "output.LayerNorm."),
]
_DISTILBERT_LAYER = [
    ("attn.proj.", "attention.out_lin."), ("attn_norm.", "sa_layer_norm."), ("mlp.fc1.", "ffn.lin1."),
    ("mlp.fc2.", "ffn.lin2."), ("mlp_norm.", "output_layer_norm."),
]
_EMBEDDINGS = {"embeddings.word.": "embeddings.word_embeddings.", "embeddings.position.":
               "embeddings.position_embeddings.", "embeddings.token_type.": "embeddings.token_type_embeddings.",
               "embeddings.norm.": "embeddings.LayerNorm."}
_LAYER = re.compile(r"^layers\.(\d+)\.(.*)$")


def transformers_state(card: ModelCard, state: Mapping[str, Any]) -> dict[str, Any] | str:
    """zoo's state dict in transformers' names for the card's class, or the reason (`refusal`) there is none."""
    reason = refusal(card)
    if reason is not None:
        return reason
    kind = model_type(card)
    assert kind is not None
    arch = _ARCH_OF[kind]
    base = "distilbert." if arch == "distilbert" else f"{arch}."
    layers_at, table = ("transformer.layer", _DISTILBERT_LAYER) if arch == "distilbert" else \
        ("encoder.layer", _BERT_LAYER)
    expected = "head.dense.weight" if dense_in_head(_settings(card)) else "pooler.dense.weight"
    if card.task == "text-classification" and expected not in state:
        return (f"{CLASS_PREFIX[kind]}ForSequenceClassification passes the first token through a dense layer "
                f"before the classifier, and this model has none at {expected.rsplit('.', 1)[0]!r}")
    out: dict[str, Any] = {}
    for key, tensor in state.items():
        renamed = _renamed(key, tensor, card.task, arch, layers_at, table)
        if renamed is None:
            return f"tensor {key!r} has no place in transformers' {architecture(card)}"
        for name, value in renamed.items():
            out[name if name.startswith(("classifier.", "pre_classifier.")) else base + name] = value
    return out


def _renamed(key: str, tensor: Any, task: str, arch: str, layers_at: str,
             table: list[tuple[str, str]]) -> dict[str, Any] | None:
    for old, new in _EMBEDDINGS.items():
        if key.startswith(old):
            return {new + key[len(old):]: tensor}
    match = _LAYER.match(key)
    if match:
        index, rest = match.groups()
        prefix = f"{layers_at}.{index}."
        if rest.startswith("attn.qkv."):
            kind = rest[len("attn.qkv."):]
            query, key_, value = tensor.chunk(3, dim=0)
            names = ("q_lin", "k_lin", "v_lin") if arch == "distilbert" else \
                ("attention.self.query", "attention.self.key", "attention.self.value")
            if arch == "distilbert":
                names = tuple(f"attention.{n}" for n in names)
            return {f"{prefix}{n}.{kind}": t.contiguous() for n, t in zip(names, (query, key_, value))}
        for old, new in table:
            if rest.startswith(old):
                return {prefix + new + rest[len(old):]: tensor}
        return None
    if key.startswith(("pooler.dense.", "head.dense.")):
        rest = key.split(".", 2)[2]
        if arch == "bert":
            return {"pooler.dense." + rest: tensor}
        if arch == "distilbert":
            return {"pre_classifier." + rest: tensor}
        return {"classifier.dense." + rest: tensor}
    if key.startswith("head."):
        rest = key[len("head.out."):] if key.startswith("head.out.") else key[len("head."):]
        if arch == "roberta" and task == "text-classification":
            return {"classifier.out_proj." + rest: tensor}
        return {"classifier." + rest: tensor}
    return None


def zoo_state(card: ModelCard, state: Mapping[str, Any]) -> dict[str, Any]:
    """A file `transformers_state` wrote, in zoo's names again."""
    kind = model_type(card)
    arch = _ARCH_OF.get(kind or "", str(card.extra.get("architecture")))
    renamed = convert_state_dict(state, arch, card.task)
    if card.task != "text-classification" or not dense_in_head(_settings(card)):
        return renamed
    return {_into_dense_head(key): tensor for key, tensor in renamed.items()}


def _into_dense_head(key: str) -> str:
    """A classifier's dense and output layers in `DenseHead`'s names (``head.dense.``, ``head.out.``)."""
    if key.startswith("pooler.dense."):
        return "head.dense." + key[len("pooler.dense."):]
    if key.startswith("head."):
        return "head.out." + key[len("head."):]
    return key
