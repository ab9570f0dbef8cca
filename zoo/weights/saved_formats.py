"""Saved-folder formats that plugins read: another library's checkpoint folders, named by card data.

A family whose library writes checkpoint folders of its own (a ``config.json`` of that library's keys, beside
a weights file) declares the format on its cards, as two ``extra`` keys:

``extra["saved_folder_key"]``     the ``config.json`` key that marks the format (``"architecture"``)
``extra["saved_folder_reader"]``  ``"module:function"`` taking ``(config, directory)`` and returning the
                                  `ModelCard` that builds the folder (its registered card with the folder's
                                  classes, labels, input and builder arguments)

Recognising a folder reads data only: zoo imports the reader of the one format whose key ``config.json`` has,
after checking a registered card names it (`zoo.trust`), and builds the card it returns only with a builder
an installed plugin registered. Formats are asked in the order of their keys (sorted); the first key the
config has picks the format. Two different readers declaring one key is an error that names both. Finding the
formats reads every registered card, a catalogue's too (once per process); zoo's own folders and transformers
checkpoints never need it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..builders import BuildPlan
from ..cards import ModelCard
from ..errors import WeightsError
from ..registry import Registry, default_registry
from ..trust import check_registered, registered_cards
from .formats import read_state_dict
from .loading import import_function
from .saved_folder import weights_file
from .saving import CONFIG_NAME

SAVED_FOLDER_KEY = "saved_folder_key"
"""The card ``extra`` key naming the ``config.json`` key that marks a folder format the card's family reads."""
SAVED_FOLDER_READER = "saved_folder_reader"
"""The card ``extra`` key naming ``"module:function"`` (config, directory) -> the `ModelCard` that builds the folder."""


@dataclass(frozen=True, order=True)
class FolderFormat:
    """One registered folder format: the config key that marks it and the reader that turns it into a card."""

    key: str
    reader: str


def folder_plan(directory: Path, config: Mapping[str, Any], kwargs: Mapping[str, Any], *, load: bool) -> BuildPlan:
    """The plan to build a folder of a plugin's format, its weights (when `load`) under their own names."""
    card = folder_card(directory, config)
    card = dataclasses.replace(card, defaults={**card.defaults, **kwargs})
    if not load:
        return BuildPlan(card=card, head_optional=True, where=str(directory), location=str(directory))
    path = weights_file(directory)
    return BuildPlan(card=card, state=read_state_dict(path), where=str(path), location=str(directory))


def folder_card(directory: Path, config: Mapping[str, Any]) -> ModelCard:
    """The card of a folder that is neither zoo's nor a transformers checkpoint, from the format that reads it."""
    formats = folder_formats()
    found = format_of(config, directory / CONFIG_NAME, formats)
    if found is None:
        raise no_format_error(config, directory / CONFIG_NAME, formats)
    return read_folder(found, config, directory)


def folder_formats(registry: Registry | None = None) -> list[FolderFormat]:
    """Every folder format a registered card declares, in the order they are asked (by key, then reader)."""
    registry = default_registry() if registry is None else registry
    found: set[FolderFormat] = set()
    for card in registered_cards(registry):
        key, reader = card.extra.get(SAVED_FOLDER_KEY), card.extra.get(SAVED_FOLDER_READER)
        if isinstance(key, str) and key and isinstance(reader, str):
            found.add(FolderFormat(key, reader))
    return sorted(found)


def format_of(config: Mapping[str, Any], where: Path, formats: list[FolderFormat]) -> FolderFormat | None:
    """The format whose key `config` has (the first in `formats`' order); None when no format's key is there."""
    for found in formats:
        if found.key in config:
            rivals = sorted(f.reader for f in formats if f.key == found.key)
            if len(rivals) > 1:
                raise WeightsError(f"{where}: installed plugins read folders marked by key {found.key!r} in more "
                                   f"than one way ({', '.join(rivals)}); block all but one of their plugins "
                                   "(ZOO_PLUGINS_BLOCK, see `zoo plugins`)")
            return found
    return None


def read_folder(found: FolderFormat, config: Mapping[str, Any], directory: Path) -> ModelCard:
    """The card the format's reader makes of the folder, refused unless an installed plugin registered its builder."""
    where = directory / CONFIG_NAME
    card = import_function(found.reader, f"reader of {where}")(dict(config), directory)
    if not isinstance(card, ModelCard):
        raise WeightsError(f"{found.reader} (reader of {where}) returned {type(card).__name__}, not a zoo.ModelCard")
    check_registered(card.builder, what=str(where))
    return card


def no_format_error(config: Mapping[str, Any], where: Path, formats: list[FolderFormat],
                    registry: Registry | None = None) -> WeightsError:
    """What to say of a config.json no format reads: its keys, the formats installed plugins read, and the
    installed plugins that did not load (one of them may be the family that reads it)."""
    registry = default_registry() if registry is None else registry
    keys = sorted(str(k) for k in config)
    shown = ", ".join(repr(k) for k in keys[:12]) + (", ..." if len(keys) > 12 else "")
    readable = ", ".join(f"key {f.key!r} ({f.reader.partition(':')[0]})" for f in formats) or "none"
    idle = [f"{p.name} ({p.status})" for p in registry.plugins() if p.status != "loaded"]
    hint = f"; installed plugins not loaded: {', '.join(idle)}" if idle else ""
    return WeightsError(f"{where} is neither a zoo config (key 'zoo') nor a transformers config (key "
                        f"'model_type'), and no installed plugin reads its format (its keys: {shown}; folder "
                        f"formats plugins read: {readable}). Install the family plugin whose library wrote it "
                        f"(see `zoo plugins`{hint})")
