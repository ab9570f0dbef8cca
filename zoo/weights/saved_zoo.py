"""zoo's own saved format: ``config.json`` with a ``"zoo"`` key and the card the model was built from.

The card names its builder; `zoo.builders.import_builder` imports it only if an installed plugin
registered the same builder. The head is rebuilt as it was saved, and the weights are checked
against the sha256 recorded at save time.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..arguments import MAX_IMAGE_SIDE, check_input_sizes, checked_num_classes
from ..builders import BuildPlan
from ..cards import TASK_ALIASES, ImageInput, ModelCard
from ..errors import CardError, InvalidArgumentError, WeightsError
from ..trust import check_registered
from .formats import StateDict, read_state_dict
from .loading import import_function
from .saved_folder import weights_file
from .saving import CONFIG_NAME, check_saved_weights, recorded_key_map


def zoo_plan(directory: Path, config: Mapping[str, Any], kwargs: Mapping[str, Any], *, load: bool) -> BuildPlan:
    """The plan to rebuild a model saved by `save_pretrained` (with its weights when `load`)."""
    where = directory / CONFIG_NAME
    card, saved_classes = zoo_card(config, where)
    check_registered(card.builder, what=str(where))
    card = dataclasses.replace(card, defaults={**card.defaults, **kwargs})
    if not load:
        return BuildPlan(card=card, saved_head=saved_classes, where=str(where))
    path = weights_file(directory)
    return BuildPlan(card=card, state=saved_state(directory, config, card, path), saved_head=saved_classes,
                     where=str(path), location=str(directory))


def saved_state(directory: Path, config: Mapping[str, Any], card: ModelCard, path: Path) -> StateDict:
    """The tensors of a zoo-saved folder's weights file `path`, checked against the recorded sha256, in zoo's
    names: a file written in another library's names (``zoo.weights_key_map``) is renamed back by that reader,
    which a registered card must name."""
    check_saved_weights(directory, config, path)
    state = read_state_dict(path)
    spec = recorded_key_map(config)
    if spec is None:
        return state
    mapped = import_function(spec, f"weights reader of {directory / CONFIG_NAME}")(card, state)
    if not isinstance(mapped, Mapping):
        raise WeightsError(f"{spec} (weights reader of {directory / CONFIG_NAME}) returned "
                           f"{type(mapped).__name__}, not a mapping of tensors")
    return dict(mapped)


def zoo_card(config: Mapping[str, Any], where: Path) -> tuple[ModelCard, int | None]:
    """The card a zoo config holds, with its saved labels; and the class count the saved head has."""
    card = _saved_card(config, where)
    if card.task in TASK_ALIASES:  # saved before the task took the Hub's name
        card = dataclasses.replace(card, task=TASK_ALIASES[card.task])
    saved_classes = _saved_classes(config.get("num_classes", card.num_classes), where)
    labels = _saved_labels(config.get("labels"), saved_classes, where)
    if labels:
        card = dataclasses.replace(card, extra={**card.extra, "labels": list(labels)})
    return card, saved_classes


def _saved_card(config: Mapping[str, Any], where: Path) -> ModelCard:
    data = config.get("card")
    if not isinstance(data, Mapping):
        raise WeightsError(f"{where} has no 'card' object; it was not written by zoo.save_pretrained, "
                           "or it was edited: save the model again")
    try:
        card = ModelCard.from_dict(data)
        check_input_sizes(card.defaults)
    except (CardError, InvalidArgumentError) as exc:
        raise WeightsError(f"{where}: its card is malformed: {exc}") from None
    sides = (card.input.size, card.input.resize_size) if isinstance(card.input, ImageInput) else ()
    if any(side is not None and side > MAX_IMAGE_SIDE for side in sides):
        raise WeightsError(f"{where}: its input size {sides} is over {MAX_IMAGE_SIDE} pixels a side")
    return card


def _saved_classes(value: Any, where: Path) -> int | None:
    if value is None:
        return None
    try:
        return checked_num_classes(value)
    except InvalidArgumentError as exc:
        raise WeightsError(f"{where}: {exc}") from None


def _saved_labels(value: Any, num_classes: int | None, where: Path) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(label, str) for label in value):
        raise WeightsError(f"{where}: 'labels' must be a list of strings, got {type(value).__name__}")
    if num_classes and value and len(value) != num_classes:
        raise WeightsError(f"{where}: {len(value)} labels for a model with {num_classes} outputs")
    return value
