"""Hugging Face `transformers` checkpoints -> `TextTransformer` keyword arguments and state dicts.

Cards name these functions as strings (``card.extra["hf_config_to_kwargs"]``,
``card.extra["hf_key_map"]``, ``WeightsCard.key_map``). Each architecture has one renaming
table; each task has its own pair of functions because a task decides which checkpoint
parts are used (a feature extractor drops BERT's pooler, a classifier keeps it).

Key maps rename every tensor the module uses and drop only known pre-training heads
(masked-LM and next-sentence heads, buffers such as ``position_ids``); anything else is
passed through, so strict loading still reports a checkpoint that does not fit.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from zoo import InvalidArgumentError, WeightsError

ARCHITECTURES = ("bert", "distilbert", "roberta")
TASKS = ("text-classification", "feature-extraction", "token-classification")
_TASK_SUFFIX = {"text-classification": "classifier", "feature-extraction": "features",
                "token-classification": "tokens"}

# Checkpoint parts that only pre-training uses; no zoo task reads them.
_PRETRAINING = {
    "bert": ("cls.",),
    "distilbert": ("vocab_transform.", "vocab_layer_norm.", "vocab_projector."),
    "roberta": ("lm_head.", "roberta.pooler.", "pooler."),
}
# Parts a task never reads: BERT's next-sentence pooler outside first-token classification,
# and a fine-tuned classifier when only features are wanted.
_UNUSED_BY_TASK = {
    "text-classification": (),
    "token-classification": ("pooler.", "pre_classifier."),
    "feature-extraction": ("pooler.", "pre_classifier.", "classifier."),
}
_BASE_PREFIX = {"bert": "bert.", "distilbert": "distilbert.", "roberta": "roberta."}
# Architectures whose checkpoints number positions from pad_token_id + 1, so that the first pad_token_id + 1 rows of
# the position table are never a token's position.
POSITIONS_AFTER_PADDING = ("roberta",)

# (pattern over the checkpoint name without its base prefix, replacement)
_RENAMES = {
    "bert": [
        (r"^embeddings\.word_embeddings\.", "embeddings.word."),
        (r"^embeddings\.position_embeddings\.", "embeddings.position."),
        (r"^embeddings\.token_type_embeddings\.", "embeddings.token_type."),
        (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
        (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"layers.\1.attn.\2."),
        (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"layers.\1.attn.proj."),
        (r"^encoder\.layer\.(\d+)\.attention\.output\.LayerNorm\.", r"layers.\1.attn_norm."),
        (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"layers.\1.mlp.fc1."),
        (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"layers.\1.mlp.fc2."),
        (r"^encoder\.layer\.(\d+)\.output\.LayerNorm\.", r"layers.\1.mlp_norm."),
        (r"^pooler\.dense\.", "pooler.dense."),
        (r"^classifier\.", "head."),
    ],
    "distilbert": [
        (r"^embeddings\.word_embeddings\.", "embeddings.word."),
        (r"^embeddings\.position_embeddings\.", "embeddings.position."),
        (r"^embeddings\.LayerNorm\.", "embeddings.norm."),
        (r"^transformer\.layer\.(\d+)\.attention\.(q|k|v)_lin\.",
         lambda m: f"layers.{m.group(1)}.attn.{dict(q='query', k='key', v='value')[m.group(2)]}."),
        (r"^transformer\.layer\.(\d+)\.attention\.out_lin\.", r"layers.\1.attn.proj."),
        (r"^transformer\.layer\.(\d+)\.sa_layer_norm\.", r"layers.\1.attn_norm."),
        (r"^transformer\.layer\.(\d+)\.ffn\.lin1\.", r"layers.\1.mlp.fc1."),
        (r"^transformer\.layer\.(\d+)\.ffn\.lin2\.", r"layers.\1.mlp.fc2."),
        (r"^transformer\.layer\.(\d+)\.output_layer_norm\.", r"layers.\1.mlp_norm."),
        (r"^pre_classifier\.", "pooler.dense."),
        (r"^classifier\.", "head."),
    ],
}
_RENAMES["roberta"] = [r for r in _RENAMES["bert"] if not r[0].startswith(r"^classifier")] + [
    (r"^classifier\.dense\.", "pooler.dense."),
    (r"^classifier\.out_proj\.", "head."),
    (r"^classifier\.(?=(weight|bias)$)", "head."),  # token classification: a plain Linear
]
_COMPILED = {arch: [(re.compile(p), r) for p, r in rules] for arch, rules in _RENAMES.items()}


# ---------------------------------------------------------------------------- state dicts


def convert_state_dict(state: Mapping[str, Any], arch: str, task: str) -> dict[str, Any]:
    """Rename a `transformers` state dict of `arch` to `TextTransformer` names for `task`."""
    _check(arch, task)
    renamed: dict[str, Any] = {}
    for key, tensor in state.items():
        key = _legacy_norm_name(key)
        if key.endswith("position_ids") or key.startswith(_PRETRAINING[arch]):
            continue
        key = key[len(_BASE_PREFIX[arch]):] if key.startswith(_BASE_PREFIX[arch]) else key
        if key.startswith(_UNUSED_BY_TASK[task]):
            continue
        for pattern, replacement in _COMPILED[arch]:
            if pattern.match(key):
                key = pattern.sub(replacement, key, count=1)
                break
        renamed[key] = tensor
    return _fuse_qkv(renamed)


def _legacy_norm_name(key: str) -> str:
    """Original TF-converted BERT files name LayerNorm parameters gamma/beta."""
    if "LayerNorm." in key or "layer_norm." in key:
        return re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", key))
    return key


def _fuse_qkv(state: dict[str, Any]) -> dict[str, Any]:
    """Concatenate ``attn.query/key/value`` into the fused ``attn.qkv`` projection."""
    import torch

    out: dict[str, Any] = {}
    pending: dict[tuple[str, str], dict[str, Any]] = {}
    for key, tensor in state.items():
        match = re.match(r"^(layers\.\d+\.attn)\.(query|key|value)\.(weight|bias)$", key)
        if match is None:
            out[key] = tensor
            continue
        parts = pending.setdefault((match.group(1), match.group(3)), {})
        parts[match.group(2)] = tensor
    for (prefix, kind), parts in pending.items():
        if len(parts) != 3:
            missing = sorted({"query", "key", "value"} - set(parts))
            raise WeightsError(f"checkpoint has no {prefix} {', '.join(missing)} {kind}; it is not a complete encoder")
        out[f"{prefix}.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
    return out


# ---------------------------------------------------------------------------- configs


def config_to_kwargs(config: Mapping[str, Any], arch: str, task: str) -> dict[str, Any]:
    """A `transformers` config.json (as a dict) -> `build_text_transformer` keywords for `task`."""
    _check(arch, task)
    if arch == "distilbert":
        kwargs = {
            "vocab_size": config["vocab_size"], "hidden_size": config["dim"], "num_layers": config["n_layers"],
            "num_heads": config["n_heads"], "intermediate_size": config["hidden_dim"],
            "max_positions": config.get("max_position_embeddings", 512), "type_vocab_size": 0,
            "pad_token_id": config.get("pad_token_id", 0), "layer_norm_eps": 1e-12,
            "hidden_act": config.get("activation", "gelu"), "dropout": config.get("dropout", 0.1),
            "attention_dropout": config.get("attention_dropout", 0.1), "position_style": "absolute",
        }
        head_dropout = config.get("seq_classif_dropout", 0.2) if task == "text-classification" else kwargs["dropout"]
    else:
        style = config.get("position_embedding_type", "absolute") or "absolute"
        if style != "absolute":
            raise WeightsError(f"{arch} checkpoints with position_embedding_type={style!r} are not supported; "
                             "only 'absolute' position embeddings are")
        kwargs = {
            "vocab_size": config["vocab_size"], "hidden_size": config["hidden_size"],
            "num_layers": config["num_hidden_layers"], "num_heads": config["num_attention_heads"],
            "intermediate_size": config["intermediate_size"],
            "max_positions": config.get("max_position_embeddings", 512),
            "type_vocab_size": config.get("type_vocab_size", 2), "pad_token_id": config.get("pad_token_id", 0),
            "layer_norm_eps": config.get("layer_norm_eps", 1e-12), "hidden_act": config.get("hidden_act", "gelu"),
            "dropout": config.get("hidden_dropout_prob", 0.1),
            "attention_dropout": config.get("attention_probs_dropout_prob", 0.1),
            "position_style": "after_padding" if arch in POSITIONS_AFTER_PADDING else "absolute",
        }
        head_dropout = config.get("classifier_dropout")
        head_dropout = kwargs["dropout"] if head_dropout is None else head_dropout
    kwargs["task"] = task
    kwargs["classifier_dropout"] = head_dropout
    architectures = tuple(config.get("architectures") or ())
    trained = _has_task_head(architectures, task)
    kwargs["num_classes"] = _num_labels(config) if trained else 0
    if task == "text-classification":
        kwargs["pooling"] = "cls"
        kwargs.update(_classifier_pooler(arch, architectures, head_dropout))
        if kwargs.get("pooler_in_head"):
            # a fresh dense layer lives in the head, so the head is built whole (the config's label count, as
            # transformers builds it); num_classes=N then replaces only its output layer, 0 removes it
            kwargs["num_classes"] = _num_labels(config)
    return kwargs


def card_extra(arch: str) -> dict[str, Any]:
    """What a card that loads `arch` checkpoints tells the loader about them (card ``extra`` keys): whether positions
    start after the padding row, which the loader leaves out of the longest sequence the checkpoint takes."""
    if arch not in ARCHITECTURES:
        raise InvalidArgumentError(f"unknown architecture {arch!r}; known: {ARCHITECTURES}")
    return {"hf_positions_after_padding": arch in POSITIONS_AFTER_PADDING}


def _num_labels(config: Mapping[str, Any]) -> int:
    if config.get("id2label"):
        return len(config["id2label"])
    return int(config.get("num_labels", 2))


def _has_task_head(architectures: tuple[str, ...], task: str) -> bool:
    suffix = {"text-classification": "ForSequenceClassification",
              "token-classification": "ForTokenClassification"}.get(task)
    return suffix is not None and any(a.endswith(suffix) for a in architectures)


def _classifier_pooler(arch: str, architectures: tuple[str, ...], dropout: float) -> dict[str, Any]:
    """How the first token reaches the head, as transformers' ``*ForSequenceClassification`` of `arch` does it.

    The dense layer before the output layer loads where the checkpoint holds it (BERT's pre-trained pooler, a
    fine-tuned classifier's own) and sits in the pooler. Where the checkpoint holds none (a base DistilBERT or
    RoBERTa, a BERT saved without its pooler) it is built fresh into the head (``pooler_in_head``), so it trains
    wherever the head trains and a fine-tune loads in ``AutoModelForSequenceClassification``.
    """
    held = _has_task_head(architectures, "text-classification")
    if arch == "bert":
        # BERT's pooler is pre-trained (next-sentence task) and kept by most saved models.
        without = ("ForMaskedLM", "ForTokenClassification", "ForQuestionAnswering", "ForCausalLM")
        held = held or not any(a.endswith(without) for a in architectures)
    settings: dict[str, Any] = {"pooler_dense": True, "pooler_in_head": not held}
    if arch == "distilbert":
        return {**settings, "pooler_activation": "relu"}
    if arch == "bert":
        return {**settings, "pooler_activation": "tanh"}
    # RobertaClassificationHead: dropout, dense, tanh, dropout, out_proj (its classifier dropout both times)
    return {**settings, "pooler_activation": "tanh", "pooler_dropout": dropout}


def _check(arch: str, task: str) -> None:
    if arch not in ARCHITECTURES:
        raise InvalidArgumentError(f"unknown architecture {arch!r}; known: {ARCHITECTURES}")
    if task not in TASKS:
        raise InvalidArgumentError(f"unknown task {task!r}; known: {TASKS}")


# ---------------------------------------------------------------------------- named entry points
# Cards refer to these by "zoo_text.hf_checkpoints:<name>", e.g. bert_classifier_keys.

def _key_map(arch: str, task: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def key_map(state: Mapping[str, Any]) -> dict[str, Any]:
        return convert_state_dict(state, arch, task)

    key_map.__doc__ = f"Rename a `transformers` {arch} state dict for a {task} TextTransformer."
    return key_map


def _config_map(arch: str, task: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def config_map(config: Mapping[str, Any]) -> dict[str, Any]:
        return config_to_kwargs(config, arch, task)

    config_map.__doc__ = f"A `transformers` {arch} config -> build_text_transformer keywords for {task}."
    return config_map


for _arch in ARCHITECTURES:
    for _task in TASKS:
        _name = f"{_arch}_{_TASK_SUFFIX[_task]}"
        globals()[f"{_name}_keys"] = _key_map(_arch, _task)
        globals()[f"{_name}_config"] = _config_map(_arch, _task)
del _arch, _task, _name


def entry_point(kind: str, arch: str, task: str) -> str:
    """``"zoo_text.hf_checkpoints:<arch>_<task>_<kind>"`` for a card (kind: ``keys`` or ``config``)."""
    _check(arch, task)
    return f"{__name__}:{arch}_{_TASK_SUFFIX[task]}_{kind}"
