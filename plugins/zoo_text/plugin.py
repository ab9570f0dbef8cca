"""Registers the text family. zoo imports this module to list models, so it imports no torch."""
from __future__ import annotations

import zoo

from .catalog import (
    CHECKPOINTS,
    GENERIC_ARCHS,
    GENERIC_NAMES,
    GENERIC_SHAPE,
    GENERIC_VOCAB,
    HF_LAYER_GROUPS,
    KEYS_MODULE,
    LORA_TARGETS,
    RNN_BUILDER,
    RNN_DEFAULTS,
    RNNS,
    TASK_SUFFIX,
    TRANSFORMER_BUILDER,
    Checkpoint,
    checkpoint_defaults,
    layer_groups,
)
from .hf_checkpoints import card_extra

FAMILY = {"bert": "bert", "distilbert": "bert", "roberta": "bert"}
# zoo.create(name, drop_rate=...): the dropout of the embeddings and every layer (and of the head, unless a
# checkpoint sets its own classifier dropout); the RNNs' dropout after pooling (and between stacked layers).
CREATE_OPTIONS = {"drop_rate": {"keyword": "dropout"}}
# The sentence-transformers poolings the encoder reproduces (keywords pooling= and normalize=); a repo pooled
# otherwise (max, last token) is refused by zoo.weights.saved_hf rather than embedded differently.
SENTENCE_POOLINGS = ["cls", "mean"]
# zoo.save_pretrained writes a folder plain transformers loads too, where it has a class for the model.
INTERCHANGE = {"saved_config": "zoo_text.interchange:transformers_config",
               "saved_state": "zoo_text.interchange:transformers_state",
               "saved_state_reader": "zoo_text.interchange:zoo_state"}


def register(registry: zoo.Registry) -> None:
    for ckpt in CHECKPOINTS:
        registry.register(checkpoint_card(ckpt))
    for arch, model_types in GENERIC_ARCHS.items():
        for task in GENERIC_NAMES:
            registry.register(generic_card(arch, model_types, task))
    for name, options in RNNS.items():
        registry.register(rnn_card(name, options))
    for recipe in RECIPES:
        registry.register(recipe)


def checkpoint_card(ckpt: Checkpoint) -> zoo.ModelCard:
    defaults = checkpoint_defaults(ckpt)
    suffix = TASK_SUFFIX[ckpt.task]
    weights = zoo.WeightsCard(
        source=f"hf-hub:{ckpt.repo}", filename="model.safetensors", license=ckpt.license,
        num_classes=len(ckpt.labels) if ckpt.labels else None, labels=ckpt.labels,
        key_map=f"{KEYS_MODULE}:{ckpt.arch}_{suffix}_keys", description=f"{ckpt.repo} from the Hugging Face Hub",
    )
    return zoo.ModelCard(
        name=ckpt.name, builder=TRANSFORMER_BUILDER, task=ckpt.task, modality="text", family=FAMILY[ckpt.arch],
        description=ckpt.description, defaults=defaults,
        input=zoo.TextInput(max_length=ckpt.max_length, tokenizer=f"hf-hub:{ckpt.repo}", lowercase=ckpt.lowercase),
        head="head", layer_groups=layer_groups(ckpt.shape["num_layers"]),
        weights={"hf": weights}, default_weights="hf", num_features=ckpt.shape["hidden_size"],
        aliases=ckpt.aliases, extra={"architecture": ckpt.arch, "lora_targets": LORA_TARGETS, **INTERCHANGE},
        create_options=CREATE_OPTIONS,
    )


def generic_card(arch: str, model_types: tuple[str, ...], task: str) -> zoo.ModelCard:
    """A card with no weights of its own: it builds any transformers checkpoint of `model_types`."""
    suffix = TASK_SUFFIX[task]
    defaults = checkpoint_defaults(Checkpoint("generic", "", arch, task, GENERIC_SHAPE[arch], GENERIC_VOCAB[arch], ""))
    return zoo.ModelCard(
        name=GENERIC_NAMES[task].format(arch=arch), builder=TRANSFORMER_BUILDER, task=task, modality="text",
        family=FAMILY[arch],
        description=f"{arch} encoder for {task}, random base-size weights; loads any transformers "
                    f"{'/'.join(model_types)} checkpoint through zoo.create('local-dir:...' or 'hf-hub:...')",
        defaults=defaults, input=zoo.TextInput(max_length=512),
        head="head", layer_groups=layer_groups(None), num_features=GENERIC_SHAPE[arch]["hidden_size"],
        extra={"architecture": arch, "lora_targets": LORA_TARGETS, "hf_model_types": list(model_types), **INTERCHANGE,
               "hf_config_to_kwargs": f"{KEYS_MODULE}:{arch}_{suffix}_config", **card_extra(arch),
               "hf_key_map": f"{KEYS_MODULE}:{arch}_{suffix}_keys", "hf_layer_groups": HF_LAYER_GROUPS,
               **({"sentence_poolings": SENTENCE_POOLINGS} if task == "feature-extraction" else {})},
        create_options=CREATE_OPTIONS,
    )


def rnn_card(name: str, options: dict) -> zoo.ModelCard:
    cell = options["cell"].upper()
    kind = f"bidirectional {cell}" if options["bidirectional"] else cell
    return zoo.ModelCard(
        name=name, builder=RNN_BUILDER, task="text-classification", modality="text", family="rnn",
        description=f"{kind} text classifier (embedding, pooled states, linear head) trained from scratch; "
                    "pair it with zoo.data.text.train_tokenizer on your texts",
        defaults={**RNN_DEFAULTS, **options}, input=zoo.TextInput(max_length=256),
        head="head", layer_groups=["embedding", "rnn", "head"], create_options=CREATE_OPTIONS,
    )


RECIPES = (
    zoo.Recipe(name="bert_ft", model="bert_base_uncased",
               description="BERT base uncased, pre-trained, with a new head of num_classes; "
                           "embeddings and the lower 6 layers frozen",
               options={"pretrained": True, "freeze": 7}, required=("num_classes",)),
    zoo.Recipe(name="distilbert_ft", model="distilbert_base_uncased",
               description="DistilBERT base uncased, pre-trained, with a new head of num_classes; "
                           "embeddings and the lower 3 layers frozen",
               options={"pretrained": True, "freeze": 4}, required=("num_classes",)),
    zoo.Recipe(name="minilm_ft", model="all_minilm_l6_v2",
               description="all-MiniLM-L6-v2, pre-trained, mean-pooled (not normalised) into a new head of "
                           "num_classes; embeddings and the lower 3 layers frozen",
               options={"pretrained": True, "freeze": 4, "normalize": False}, required=("num_classes",)),
)
