"""timm's own checkpoint folders and Hub repos: ``config.json`` with ``architecture`` and ``pretrained_cfg``.

What timm's ``save_pretrained`` / ``push_to_hf_hub`` write. Every card of the family declares this format
(``extra["saved_folder_key"]`` and ``extra["saved_folder_reader"]``), so ``zoo.create("local-dir:DIR")`` and
``"hf-hub:org/repo"`` call `folder_card` for such a folder. The architecture must be one a registered card
builds under ``timm/<architecture>``: the folder names data only, never code. The config's ``num_classes``,
``label_names``, input settings and ``model_args`` (plain values) become the card's. No torch, no timm here.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zoo

from .catalog import FOLDER_KEY, INSTALL_HINT, NAMESPACE

_CONFIG_NAME = "config.json"
_PLAIN = (str, int, float, bool, type(None))
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


def folder_card(config: Mapping[str, Any], directory: Path) -> zoo.ModelCard:
    """The registered card of the checkpoint's architecture, with its classes, labels, input and arguments."""
    where = directory / _CONFIG_NAME
    architecture = config[FOLDER_KEY]
    if not isinstance(architecture, str) or not architecture:
        raise zoo.WeightsError(f"{where}: 'architecture' must be a timm architecture name, got {architecture!r}")
    name = NAMESPACE + architecture
    try:
        card = zoo.get_card(name)
    except zoo.UnknownModelError:
        raise zoo.WeightsError(f"{where} is a timm checkpoint of architecture {architecture!r}, but no installed "
                               f"plugin registers {name!r}; install the timm family: {INSTALL_HINT}") from None
    except zoo.ZooError as exc:
        raise zoo.WeightsError(f"{where}: cannot use {name!r}: {exc}") from None
    pretrained_cfg = _mapping(config.get("pretrained_cfg", {}), "pretrained_cfg", where)
    model_args = _mapping(config.get("model_args", {}), "model_args", where)
    bad = sorted(k for k, v in model_args.items() if not _plain(v))
    if bad:
        raise zoo.WeightsError(f"{where}: 'model_args' {bad} must be plain values (numbers, strings, lists)")
    if "model_name" in model_args:  # the architecture is 'architecture', checked above against the registry
        raise zoo.WeightsError(f"{where}: 'model_args' may not set 'model_name'; the architecture is "
                               f"'architecture' ({architecture!r})")
    num_classes = config.get("num_classes", pretrained_cfg.get("num_classes", card.class_count()))
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
        raise zoo.WeightsError(f"{where}: 'num_classes' must be a whole number of at least 0, got {num_classes!r}")
    labels = config.get("label_names", pretrained_cfg.get("label_names"))
    extra = dict(card.extra)
    if isinstance(labels, list) and len(labels) == num_classes and all(isinstance(x, str) for x in labels):
        extra["labels"] = labels
    try:
        return dataclasses.replace(card, defaults={**card.defaults, **model_args, "num_classes": num_classes},
                                   num_classes=num_classes, default_weights=None,
                                   input=_input(pretrained_cfg, card), extra=extra)
    except zoo.CardError as exc:
        raise zoo.WeightsError(f"{where}: {exc}") from None


def _input(cfg: Mapping[str, Any], card: zoo.ModelCard) -> Any:
    """The checkpoint's input settings over the card's (timm's input_size, interpolation, crop_pct, mean, std)."""
    base = card.input if isinstance(card.input, zoo.ImageInput) else None
    size = cfg.get("input_size")
    if not (isinstance(size, (list, tuple)) and len(size) == 3 and size[1] == size[2] and isinstance(size[1], int)):
        return card.input
    crop = cfg.get("crop_pct") or 1.0
    interpolation = cfg.get("interpolation")
    return zoo.ImageInput(
        size=size[1],
        mean=tuple(cfg.get("mean") or (base.mean if base else zoo.ImageInput(1).mean)),
        std=tuple(cfg.get("std") or (base.std if base else zoo.ImageInput(1).std)),
        resize_size=math.floor(size[1] / crop) if isinstance(crop, (int, float)) and crop < 1 else None,
        interpolation=interpolation if interpolation in _INTERPOLATIONS else "bicubic",
    )


def _mapping(value: Any, key: str, where: Path) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise zoo.WeightsError(f"{where}: '{key}' must be a JSON object, got {type(value).__name__}")
    return value


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, _PLAIN)
