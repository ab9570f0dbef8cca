"""Hugging Face ``transformers`` checkpoints: ``config.json`` with a ``"model_type"``.

A registered card that lists the model type in ``extra["hf_model_types"]`` builds it, with
``extra["hf_config_to_kwargs"]`` turning the config into builder arguments and
``extra["hf_key_map"]`` renaming the checkpoint's keys and ``extra["hf_layer_groups"]`` giving the
layer groups of the checkpoint's depth (all named by the installed plugin's card).
Among those cards, the task is ``task=`` if given, else the one the config's ``architectures``
names (``BertForSequenceClassification``: text-classification, with its trained head and labels),
else feature extraction.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..builders import BuildPlan
from ..cards import TASK_ALIASES, ModelCard, Recipe
from ..errors import DuplicateModelError, WeightsError
from ..registry import default_registry
from .formats import read_state_dict
from .loading import apply_key_map, import_function
from .saved_folder import weights_file
from .saving import CONFIG_NAME

# The tasks a transformers class's suffix says its trained head does, as the Hub names them; the
# first one a registered card of the model type does wins (sequence classification of text or audio).
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", ("text-classification", "audio-classification")),
    ("ForAudioClassification", ("audio-classification",)),
    ("ForTokenClassification", ("token-classification",)),
    ("ForCTC", ("automatic-speech-recognition",)),
)
# Old spellings of the Hub's task names, still accepted where a user types a task.
def hf_plan(directory: Path, config: Mapping[str, Any], kwargs: Mapping[str, Any], *, task: str | None,
            load: bool) -> BuildPlan:
    """The plan to build a transformers checkpoint with the family that declares its model type."""
    card = transformers_card(config, directory / CONFIG_NAME, task=task, kwargs=kwargs)
    if not load:
        return BuildPlan(card=card, head_optional=True, where=str(directory), location=str(directory))
    path = weights_file(directory)
    state = apply_key_map(read_state_dict(path), card.extra.get("hf_key_map"), card.name)
    return BuildPlan(card=card, state=state, head_optional=True, where=str(path), location=str(directory))


def _hf_cards(model_type: str) -> list[ModelCard]:
    registry = default_registry()
    cards = []
    for name in registry.names():
        try:
            entry = registry.entry(name)
        except DuplicateModelError:
            continue
        if isinstance(entry, Recipe):
            continue
        if model_type in (entry.extra.get("hf_model_types") or ()):
            cards.append(entry)
    return cards


def choose_card(model_type: str, task: str | None, architectures: Sequence[str] = ()) -> ModelCard:
    """The registered card for a transformers `model_type`: of `task` if given, else of the task the
    checkpoint's `architectures` were trained for, else feature extraction first."""
    cards = _hf_cards(model_type)
    if not cards:
        raise WeightsError(f"no registered model loads transformers model_type {model_type!r}; install a family "
                           "plugin whose cards list it in extra['hf_model_types'] (see `zoo plugins`)")
    if task is not None:
        matching = [c for c in cards if TASK_ALIASES.get(c.task, c.task) == task]
        if not matching:
            tasks = sorted({c.task for c in cards})
            raise WeightsError(f"no registered model loads model_type {model_type!r} for task {task!r}; "
                               f"tasks available: {', '.join(tasks)}")
        return matching[0]
    for trained in architecture_tasks(architectures):
        matching = [c for c in cards if TASK_ALIASES.get(c.task, c.task) == trained]
        if matching:
            return matching[0]
    features = [c for c in cards if c.task == "feature-extraction"]
    return (features or cards)[0]


def architecture_tasks(architectures: Sequence[str]) -> list[str]:
    """The tasks transformers class names such as ``BertForTokenClassification`` were trained for, in order."""
    return [task for name in architectures for suffix, tasks in ARCHITECTURE_TASKS if name.endswith(suffix)
            for task in tasks]


def transformers_card(config: Mapping[str, Any], where: Path, *, task: str | None,
                       kwargs: Mapping[str, Any] | None = None) -> ModelCard:
    """The registered card that builds this checkpoint, with builder arguments and labels from its config."""
    model_type = config["model_type"]
    if not isinstance(model_type, str):
        raise WeightsError(f"{where}: 'model_type' must be a string, got {model_type!r}")
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or not all(isinstance(name, str) for name in architectures):
        raise WeightsError(f"{where}: 'architectures' must be a list of transformers class names, "
                           f"got {architectures!r}")
    card = choose_card(model_type, task, architectures)
    to_kwargs = card.extra.get("hf_config_to_kwargs")
    derived = _derived_kwargs(import_function(to_kwargs, f"config converter of {card.name}"), config, where) \
        if to_kwargs else {}
    builder_kwargs = {**card.defaults, **derived, **(kwargs or {})}
    labels = _config_labels(config)
    built_classes = builder_kwargs.get("num_classes", card.class_count())
    extra = {**card.extra, **({"labels": labels} if labels and len(labels) == built_classes else {})}
    return dataclasses.replace(card, defaults=builder_kwargs, num_classes=built_classes, default_weights=None,
                               extra=extra, layer_groups=_layer_groups(card, builder_kwargs))


def _layer_groups(card: ModelCard, builder_kwargs: Mapping[str, Any]) -> list[str]:
    """The layer groups of the checkpoint's own depth, where the card names a function that gives them
    (``extra["hf_layer_groups"]``: builder keywords and head -> prefixes); else the card's."""
    spec = card.extra.get("hf_layer_groups")
    if not spec:
        return list(card.layer_groups)
    groups = import_function(spec, f"layer groups of {card.name}")(dict(builder_kwargs), card.head)
    if not isinstance(groups, (list, tuple)) or not all(isinstance(group, str) for group in groups):
        raise WeightsError(f"{spec} (layer groups of {card.name}) returned {groups!r}, not a list of module prefixes")
    return list(groups)


def _derived_kwargs(convert: Any, config: Mapping[str, Any], where: Path) -> Mapping[str, Any]:
    """Builder arguments from a transformers config; a missing or ill-typed field is a clear error."""
    try:
        derived = convert(dict(config))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise WeightsError(f"{where} is not a usable transformers config ({detail})") from None
    if not isinstance(derived, Mapping):
        raise WeightsError(f"{where}: its config converter returned {type(derived).__name__}, not a mapping")
    return derived


def _config_labels(config: Mapping[str, Any]) -> list[str] | None:
    id2label = config.get("id2label")
    if not isinstance(id2label, Mapping) or not id2label:
        return None
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (TypeError, ValueError):
        return None
