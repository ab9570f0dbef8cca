"""``zoo.create(name, checkpoint_path=...)``: a local file's weights as a build plan for a registered card.

Kept apart from `zoo.weights.pretrained` (a card's own weights), which must load with nothing but torch;
reading a saved folder needs the saving layer and huggingface_hub.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..builders import BuildPlan
from ..cards import ModelCard
from ..errors import WeightsError
from .formats import is_safetensors, read_state_dict
from .loading import apply_key_map
from .saved_folder import read_config, weights_file
from .saved_zoo import saved_state, zoo_card
from .saving import CONFIG_NAME, check_saved_weights, recorded_key_map


def checkpoint_plan(card: ModelCard, path: Path, builder_kwargs: dict[str, Any], *, takes_classes: bool,
                    num_classes: int | None) -> BuildPlan:
    """The plan to build `card` with the weights of a local file (``zoo.create(name, checkpoint_path=...)``).

    `path` is a ``.safetensors`` file or a folder saved by `zoo.save_pretrained` (its weights checked against
    the sha256 its config records); pickle checkpoints are refused. The file holds the model's own keys or
    those of the card's weights (their key map is applied when that fits the built model better). Head-aware:
    without `num_classes` the model gets the class count of the file's head; with another `num_classes` every
    key but the head's loads.
    """
    state, where = _read_checkpoint(path)
    weights = card.weights.get(card.default_weights) if card.default_weights else None
    key_map = weights.key_map if weights is not None else None
    file_classes = _head_classes(card, state, key_map)
    if takes_classes:
        if num_classes:
            builder_kwargs["num_classes"] = num_classes
        elif file_classes is not None:
            builder_kwargs["num_classes"] = file_classes
    built_classes = builder_kwargs.get("num_classes", card.class_count())
    final = dataclasses.replace(card, defaults=builder_kwargs, default_weights=None, num_classes=built_classes)
    return BuildPlan(card=final, state=state, head_optional=True, where=where, location=str(path), key_map=key_map)


def _read_checkpoint(path: Path) -> tuple[dict[str, Any], str]:
    if path.is_dir():
        config = read_config(path)
        if "zoo" not in config:
            raise WeightsError(f"checkpoint_path {path} is a folder, but not one zoo.save_pretrained wrote (its "
                               "config.json has no 'zoo' key); load a transformers folder with "
                               f"zoo.create('local-dir:{path}')")
        file = weights_file(path)
        if recorded_key_map(config) is not None:  # written in another library's names: zoo's names again
            saved, _ = zoo_card(config, path / CONFIG_NAME)
            return saved_state(path, config, saved, file), f"checkpoint_path {file}"
        check_saved_weights(path, config, file)
    elif path.is_file():
        file = path
    else:
        raise WeightsError(f"checkpoint_path {path}: no such file or folder; give a .safetensors file or a "
                           "folder saved by zoo.save_pretrained")
    if not is_safetensors(file):
        raise WeightsError(f"checkpoint_path {file} is not a safetensors file; zoo loads local checkpoints only as "
                           "safetensors, which hold tensors and never code. Convert it once, with code you trust: "
                           "safetensors.torch.save_file(torch.load(PATH, weights_only=True), 'model.safetensors')")
    return read_state_dict(file), f"checkpoint_path {file}"


def _head_classes(card: ModelCard, state: dict[str, Any], key_map: str | None) -> int | None:
    """The class count of the file's head (the first dimension of the card's head weight), if it has one."""
    if not card.head:
        return None
    key = f"{card.head}.weight"
    tensor = state.get(key)
    if tensor is None and key_map:
        tensor = apply_key_map(state, key_map, card.name).get(key)
    shape: tuple[int, ...] = tuple(getattr(tensor, "shape", ()))
    return int(shape[0]) if len(shape) >= 2 else None
