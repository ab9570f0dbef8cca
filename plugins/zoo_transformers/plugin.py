"""Registers the transformers family. zoo imports this module to list models: no torch, no transformers."""
from __future__ import annotations

import zoo

from .catalog import catalogue_cards
from .tasks import TASKS

BUILDER = "zoo_transformers.build:build_model"
CHECKPOINT_CARD = "zoo_transformers.card:checkpoint_card"
FIT_LAYOUT = "zoo_transformers.keys:fit_layout"
SAVED_CONFIG = "zoo_transformers.interchange:transformers_config"
SENTENCE_POOLINGS = ["cls", "mean", "max", "lasttoken"]


def generic_card(task: str) -> zoo.ModelCard:
    """The card that builds any transformers checkpoint of `task` whose model type no native family claims."""
    modality = {"image-classification": "image", "audio-classification": "audio",
                "automatic-speech-recognition": "audio"}.get(task, "text")
    extra: dict[str, object] = {"hf_model_types": ["*"], "hf_card": CHECKPOINT_CARD, "hf_key_map": FIT_LAYOUT,
                                "saved_config": SAVED_CONFIG}
    if task == "feature-extraction":
        extra["sentence_poolings"] = SENTENCE_POOLINGS
    return zoo.ModelCard(
        name=f"transformers/{task}", builder=BUILDER, task=task, modality=modality, family="transformers",
        description=f"any Hugging Face transformers checkpoint for {task}: zoo.create('hf-hub:org/repo') or "
                    "'local-dir:PATH' (card data read from the checkpoint)",
        defaults={"task": task}, extra=extra)


def register(registry: zoo.Registrar) -> None:
    for task in TASKS:
        registry.register(generic_card(task))
    for card in catalogue_cards():
        registry.register(card)
