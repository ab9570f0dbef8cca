"""Which tasks the family builds, and how a transformers class name or model type maps to one (no torch)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import zoo

# zoo task (Hugging Face's name) -> the transformers auto class that builds it, by modality.
AUTO_CLASSES: dict[tuple[str, str], str] = {
    ("text-classification", "text"): "AutoModelForSequenceClassification",
    ("token-classification", "text"): "AutoModelForTokenClassification",
    ("image-classification", "image"): "AutoModelForImageClassification",
    ("audio-classification", "audio"): "AutoModelForAudioClassification",
    ("automatic-speech-recognition", "audio"): "AutoModelForCTC",
    ("feature-extraction", "text"): "AutoModel",
    ("feature-extraction", "image"): "AutoModel",
    ("feature-extraction", "audio"): "AutoModel",
}
TASKS = tuple(dict.fromkeys(task for task, _ in AUTO_CLASSES))
CLASSIFICATION_TASKS = ("text-classification", "token-classification", "image-classification",
                        "audio-classification", "automatic-speech-recognition")
# A transformers class name's suffix -> the task of its trained head (sequence classification: by modality).
_SUFFIXES = (
    ("ForSequenceClassification", "sequence-classification"),
    ("ForAudioClassification", "audio-classification"),
    ("ForImageClassification", "image-classification"),
    ("ForImageClassificationWithTeacher", "image-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForCTC", "automatic-speech-recognition"),
)
# Config keys that say which modality a model type reads.
_AUDIO_KEYS = ("conv_dim", "num_mel_bins", "feat_extract_norm", "max_length_ms")
_IMAGE_KEYS = ("image_size", "patch_size", "num_channels", "patch_sizes")
INSTALL_HINT = 'pip install "zoo-models[transformers]"'


def modality_of(config: Mapping[str, Any]) -> str:
    """``text``, ``image`` or ``audio``: what a transformers config's model reads, from its own keys."""
    if any(key in config for key in _AUDIO_KEYS):
        return "audio"
    if any(key in config for key in _IMAGE_KEYS):
        return "image"
    return "text"


def trained_task(architectures: Sequence[str], modality: str) -> str | None:
    """The task the checkpoint's ``architectures`` were trained for, or None (a base or pre-training model)."""
    for name in architectures:
        for suffix, task in _SUFFIXES:
            if name.endswith(suffix):
                if task == "sequence-classification":
                    return "audio-classification" if modality == "audio" else "text-classification"
                return task
    return None


def check_task(task: str, modality: str) -> None:
    if (task, modality) not in AUTO_CLASSES:
        accepted = sorted(t for t, m in AUTO_CLASSES if m == modality)
        raise zoo.InvalidArgumentError(f"the transformers family builds {modality} models for the tasks "
                                       f"{', '.join(accepted)}; got task {task!r}")
