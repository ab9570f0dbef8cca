"""The text family's catalogue as plain data: which checkpoints, their shapes and their tasks.

Nothing here imports torch; `plugin.register` turns these entries into cards. The shapes
are those of the published checkpoints, so a card's weights load strictly into the module
its defaults build.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TRANSFORMER_BUILDER = "zoo_text.transformer:build_text_transformer"
RNN_BUILDER = "zoo_text.rnn:build_text_rnn"
KEYS_MODULE = "zoo_text.hf_checkpoints"
HF_LAYER_GROUPS = "zoo_text.catalog:hf_layer_groups"
TASK_SUFFIX = {"text-classification": "classifier", "feature-extraction": "features",
               "token-classification": "tokens"}

# Encoder shapes (hidden, layers, heads, intermediate).
BASE = {"hidden_size": 768, "num_layers": 12, "num_heads": 12, "intermediate_size": 3072}
LARGE = {"hidden_size": 1024, "num_layers": 24, "num_heads": 16, "intermediate_size": 4096}
DISTIL = {"hidden_size": 768, "num_layers": 6, "num_heads": 12, "intermediate_size": 3072}


def minilm(layers: int) -> dict[str, int]:
    return {"hidden_size": 384, "num_layers": layers, "num_heads": 12, "intermediate_size": 1536}


# Architecture-wide settings, as the transformers configs of these checkpoints give them.
ARCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "bert": {"max_positions": 512, "type_vocab_size": 2, "pad_token_id": 0, "layer_norm_eps": 1e-12,
             "position_style": "absolute", "pooler_activation": "tanh"},
    "distilbert": {"max_positions": 512, "type_vocab_size": 0, "pad_token_id": 0, "layer_norm_eps": 1e-12,
                   "position_style": "absolute", "pooler_activation": "relu", "classifier_dropout": 0.2},
    "roberta": {"max_positions": 514, "type_vocab_size": 1, "pad_token_id": 1, "layer_norm_eps": 1e-5,
                "position_style": "after_padding", "pooler_activation": "tanh"},
}
# Whether a base checkpoint holds the dense layer its first-token classifier reads (BERT's pre-trained pooler).
# Where it does not, a new head gets a fresh one built into the head (pooler_in_head), as transformers'
# DistilBERT and RoBERTa classifiers have one, so it trains with the head and the fine-tune loads there.
BASE_POOLER = {"bert": True, "distilbert": False, "roberta": False}


@dataclass(frozen=True)
class Checkpoint:
    """One published encoder checkpoint and the zoo model built on it."""

    name: str
    repo: str
    arch: str
    task: str
    shape: dict[str, int]
    vocab_size: int
    description: str
    max_length: int = 512
    lowercase: bool = False
    license: str = "apache-2.0"
    options: dict[str, Any] = field(default_factory=dict)
    labels: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()


CHECKPOINTS: tuple[Checkpoint, ...] = (
    # First-token classifiers on pre-trained encoders: a head of num_classes is added when asked.
    Checkpoint("bert_base_uncased", "google-bert/bert-base-uncased", "bert", "text-classification", BASE, 30522,
               "BERT base (uncased English, 110M parameters)", lowercase=True),
    Checkpoint("bert_base_cased", "google-bert/bert-base-cased", "bert", "text-classification", BASE, 28996,
               "BERT base (cased English, 108M parameters)"),
    Checkpoint("bert_large_uncased", "google-bert/bert-large-uncased", "bert", "text-classification", LARGE, 30522,
               "BERT large (uncased English, 335M parameters)", lowercase=True),
    Checkpoint("bert_large_cased", "google-bert/bert-large-cased", "bert", "text-classification", LARGE, 28996,
               "BERT large (cased English, 333M parameters)"),
    Checkpoint("bert_base_multilingual_cased", "google-bert/bert-base-multilingual-cased", "bert",
               "text-classification", BASE, 119547, "Multilingual BERT base (cased, 104 languages)",
               aliases=("mbert_cased",)),
    Checkpoint("bert_base_multilingual_uncased", "google-bert/bert-base-multilingual-uncased", "bert",
               "text-classification", BASE, 105879, "Multilingual BERT base (uncased, 102 languages)",
               lowercase=True),
    Checkpoint("distilbert_base_uncased", "distilbert/distilbert-base-uncased", "distilbert", "text-classification",
               DISTIL, 30522, "DistilBERT base (uncased English, 6 layers, 66M parameters)", lowercase=True),
    Checkpoint("distilbert_base_cased", "distilbert/distilbert-base-cased", "distilbert", "text-classification",
               DISTIL, 28996, "DistilBERT base (cased English, 6 layers, 65M parameters)"),
    Checkpoint("distilbert_base_multilingual_cased", "distilbert/distilbert-base-multilingual-cased", "distilbert",
               "text-classification", DISTIL, 119547, "Multilingual DistilBERT base (cased, 104 languages)"),
    Checkpoint("roberta_base", "FacebookAI/roberta-base", "roberta", "text-classification", BASE, 50265,
               "RoBERTa base (English, byte-level BPE, 125M parameters)", license="mit"),
    Checkpoint("roberta_large", "FacebookAI/roberta-large", "roberta", "text-classification", LARGE, 50265,
               "RoBERTa large (English, byte-level BPE, 355M parameters)", license="mit"),
    # Fine-tuned task checkpoints: their heads are part of the weights.
    Checkpoint("distilbert_base_uncased_sst2", "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
               "distilbert", "text-classification", DISTIL, 30522,
               "DistilBERT base uncased fine-tuned on SST-2 sentiment (NEGATIVE / POSITIVE)", lowercase=True,
               labels=("NEGATIVE", "POSITIVE")),
    Checkpoint("bert_base_ner", "dslim/bert-base-NER", "bert", "token-classification", BASE, 28996,
               "BERT base cased fine-tuned for named entities (CoNLL-2003: PER, ORG, LOC, MISC)", license="mit",
               labels=("O", "B-MISC", "I-MISC", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")),
    # Sentence embeddings (sentence-transformers): masked mean pooling, normalised where the model is.
    Checkpoint("all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2", "bert", "feature-extraction",
               minilm(6), 30522, "MiniLM-L6 sentence embeddings (384-d, unit length), all-MiniLM-L6-v2",
               max_length=256, lowercase=True, options={"normalize": True}, aliases=("minilm",)),
    Checkpoint("paraphrase_minilm_l6_v2", "sentence-transformers/paraphrase-MiniLM-L6-v2", "bert",
               "feature-extraction", minilm(6), 30522, "MiniLM-L6 paraphrase sentence embeddings (384-d)",
               max_length=128, lowercase=True),
    Checkpoint("paraphrase_minilm_l3_v2", "sentence-transformers/paraphrase-MiniLM-L3-v2", "bert",
               "feature-extraction", minilm(3), 30522, "MiniLM-L3 paraphrase sentence embeddings (384-d)",
               max_length=128, lowercase=True),
    Checkpoint("paraphrase_multilingual_minilm_l12_v2",
               "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2", "bert", "feature-extraction",
               minilm(12), 250037, "Multilingual MiniLM-L12 paraphrase sentence embeddings (384-d, 50+ languages)",
               max_length=128),
)


def checkpoint_defaults(ckpt: Checkpoint) -> dict[str, Any]:
    """Builder keywords for a checkpoint's model (pretrained=False builds the same shapes)."""
    arch = dict(ARCH_DEFAULTS[ckpt.arch])
    defaults: dict[str, Any] = {"vocab_size": ckpt.vocab_size, **ckpt.shape, **arch, "task": ckpt.task,
                                "num_classes": len(ckpt.labels) if ckpt.labels else 0}
    if ckpt.task == "text-classification":
        defaults.update(classifier_pooler(ckpt))
    defaults.update(ckpt.options)
    return defaults


def classifier_pooler(ckpt: Checkpoint) -> dict[str, Any]:
    """How a first-token classifier's dense layer is built: loaded where the checkpoint holds one (BERT's
    pooler, a fine-tuned classifier's), fresh in the head otherwise.

    A card without a repo of its own (a generic card) is built for a fresh head, from scratch or on a base
    checkpoint; given a checkpoint, the checkpoint's config decides (``zoo_text.hf_checkpoints``).
    """
    held = BASE_POOLER[ckpt.arch] or ckpt.labels is not None
    settings: dict[str, Any] = {"pooler_dense": True, "pooler_in_head": not held}
    if ckpt.arch == "roberta":
        settings["pooler_dropout"] = 0.1  # RobertaClassificationHead's dropout before its dense layer
    return settings


def layer_groups(num_layers: int | None) -> list[str]:
    """Embeddings, each encoder layer, pooler, head: input side first.

    Without a known depth (a transformers checkpoint of any size) the layers form one group.
    """
    layers = ["layers"] if num_layers is None else [f"layers.{i}" for i in range(num_layers)]
    return ["embeddings", *layers, "pooler", "head"]


def hf_layer_groups(builder_kwargs: Mapping[str, Any], head: str | None) -> list[str]:
    """The layer groups of a transformers checkpoint's own depth (named by the generic cards'
    ``extra["hf_layer_groups"]``); the head is always ``head``."""
    return layer_groups(builder_kwargs.get("num_layers"))


LORA_TARGETS = ["layers.*.attn.qkv", "layers.*.attn.proj", "layers.*.mlp.fc1", "layers.*.mlp.fc2"]

# Generic encoders: built from any transformers checkpoint of these model types.
GENERIC_ARCHS = {
    "bert": ("bert",),
    "distilbert": ("distilbert",),
    "roberta": ("roberta", "xlm-roberta", "camembert"),
}
GENERIC_VOCAB = {"bert": 30522, "distilbert": 30522, "roberta": 50265}
GENERIC_SHAPE = {"bert": BASE, "distilbert": DISTIL, "roberta": BASE}
GENERIC_NAMES = {"text-classification": "{arch}_classifier", "feature-extraction": "{arch}_encoder",
                 "token-classification": "{arch}_token_classifier"}

# RNN classifiers trained from scratch with a tokenizer trained on the user's texts.
RNNS = {
    "lstm_classifier": {"cell": "lstm", "bidirectional": False},
    "gru_classifier": {"cell": "gru", "bidirectional": False},
    "bilstm_classifier": {"cell": "lstm", "bidirectional": True},
    "bigru_classifier": {"cell": "gru", "bidirectional": True},
}
RNN_DEFAULTS = {"vocab_size": 8000, "embed_dim": 128, "hidden_size": 128, "num_layers": 1, "dropout": 0.1,
                "pooling": "max", "pad_token_id": 0, "num_classes": 2}
