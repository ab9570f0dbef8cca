"""What transformers reads in a saved folder's config.json, written beside zoo's keys by `zoo.save_pretrained`.

With these keys (the checkpoint's own config, ``architectures`` naming the class of the task and the labels
as ``id2label``), ``AutoModelFor<Task>.from_pretrained(DIR)`` builds the saved model and loads its
``model.safetensors``: the state dict has transformers' key names.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import zoo


def transformers_config(card: zoo.ModelCard, labels: Sequence[str] | None) -> dict[str, Any]:
    """transformers' config keys for a model built by the transformers family."""
    config = card.defaults.get("config")
    if not isinstance(config, Mapping):
        from .build import hub_config

        try:
            config = hub_config(str(card.defaults["repo"]))
        except zoo.WeightsError:
            config = card.defaults.get("shape")
            if not isinstance(config, Mapping):
                raise
    from .build import plain

    out = {k: plain(v) for k, v in config.items() if k not in ("auto_map", "_name_or_path")}
    architecture = card.extra.get("hf_architecture")
    if isinstance(architecture, str):
        out["architectures"] = [architecture]
    classes = card.class_count()
    if card.task != "feature-extraction" and card.task != "automatic-speech-recognition" and classes:
        names = list(labels) if labels and len(labels) == classes else [f"LABEL_{i}" for i in range(classes)]
        out["id2label"] = {str(i): name for i, name in enumerate(names)}
        out["label2id"] = {name: i for i, name in enumerate(names)}
        out["num_labels"] = classes
    if card.task == "automatic-speech-recognition" and classes:
        out["vocab_size"] = classes
    return out
