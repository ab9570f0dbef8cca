"""timm's own checkpoint folders and Hub repos: ``config.json`` with ``architecture`` and ``pretrained_cfg``.

What timm's ``save_pretrained`` / ``push_to_hf_hub`` write. The architecture must be one a registered card
builds under ``timm/<architecture>`` (the timm family plugin): the folder names data only, never code. The
config's ``num_classes``, ``label_names``, input settings and ``model_args`` (plain values) become the card's.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..builders import BuildPlan
from ..cards import ImageInput, ModelCard
from ..errors import CardError, UnknownModelError, WeightsError, ZooError
from ..registry import default_registry
from .formats import read_state_dict
from .saved_folder import weights_file
from .saving import CONFIG_NAME

NAMESPACE = "timm/"
_PLAIN = (str, int, float, bool, type(None))


def is_timm_config(config: Mapping[str, Any]) -> bool:
    """Whether a config.json is timm's (``architecture``), not zoo's (``zoo``) or transformers' (``model_type``)."""
    return "architecture" in config and "zoo" not in config and "model_type" not in config


def timm_plan(directory: Path, config: Mapping[str, Any], kwargs: Mapping[str, Any], *, load: bool) -> BuildPlan:
    """The plan to build a timm checkpoint with the registered ``timm/<architecture>`` card."""
    card = timm_card(config, directory / CONFIG_NAME, kwargs=kwargs)
    if not load:
        return BuildPlan(card=card, head_optional=True, where=str(directory), location=str(directory))
    path = weights_file(directory)
    return BuildPlan(card=card, state=read_state_dict(path), where=str(path), location=str(directory))


def timm_card(config: Mapping[str, Any], where: Path, *, kwargs: Mapping[str, Any] | None = None) -> ModelCard:
    """The registered card of the checkpoint's architecture, with its classes, labels, input and arguments."""
    architecture = config["architecture"]
    if not isinstance(architecture, str) or not architecture:
        raise WeightsError(f"{where}: 'architecture' must be a timm architecture name, got {architecture!r}")
    name = NAMESPACE + architecture
    try:
        card = default_registry().get_card(name)
    except UnknownModelError:
        raise WeightsError(f"{where} is a timm checkpoint of architecture {architecture!r}, but no installed plugin "
                           f"registers {name!r}; install the timm family: pip install \"zoo-models[timm]\"") from None
    except ZooError as exc:
        raise WeightsError(f"{where}: cannot use {name!r}: {exc}") from None
    pretrained_cfg = _mapping(config.get("pretrained_cfg", {}), "pretrained_cfg", where)
    model_args = _mapping(config.get("model_args", {}), "model_args", where)
    bad = sorted(k for k, v in model_args.items() if not _plain(v))
    if bad:
        raise WeightsError(f"{where}: 'model_args' {bad} must be plain values (numbers, strings, lists)")
    num_classes = config.get("num_classes", pretrained_cfg.get("num_classes", card.class_count()))
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise WeightsError(f"{where}: 'num_classes' must be a whole number of at least 0, got {num_classes!r}")
    defaults = {**card.defaults, **model_args, "num_classes": num_classes, **(kwargs or {})}
    labels = config.get("label_names", pretrained_cfg.get("label_names"))
    extra = dict(card.extra)
    if isinstance(labels, list) and len(labels) == num_classes and all(isinstance(x, str) for x in labels):
        extra["labels"] = labels
    try:
        return dataclasses.replace(card, defaults=defaults, num_classes=num_classes, default_weights=None,
                                   input=_input(pretrained_cfg, card), extra=extra)
    except CardError as exc:
        raise WeightsError(f"{where}: {exc}") from None


def _input(cfg: Mapping[str, Any], card: ModelCard) -> Any:
    """The checkpoint's input settings over the card's (timm's input_size, interpolation, crop_pct, mean, std)."""
    base = card.input if isinstance(card.input, ImageInput) else None
    size = cfg.get("input_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 3 and size[1] == size[2] and isinstance(size[1], int)):
        return card.input
    crop = cfg.get("crop_pct") or 1.0
    interpolation = cfg.get("interpolation")
    return ImageInput(
        size=size[1],
        mean=tuple(cfg.get("mean") or (base.mean if base else ImageInput(1).mean)),
        std=tuple(cfg.get("std") or (base.std if base else ImageInput(1).std)),
        resize_size=math.floor(size[1] / crop) if isinstance(crop, (int, float)) and crop < 1 else None,
        interpolation=interpolation if interpolation in ("nearest", "bilinear", "bicubic") else "bicubic",
    )


def _mapping(value: Any, key: str, where: Path) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise WeightsError(f"{where}: '{key}' must be a JSON object, got {type(value).__name__}")
    return value


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)
