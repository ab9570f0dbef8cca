"""The card of a transformers checkpoint, derived from its config and built model (``extra["hf_card"]``).

`zoo.weights.saved_hf` calls `checkpoint_card` for a ``local-dir:`` or ``hf-hub:`` checkpoint of a model
type no native family claims. The model is built once on the meta device (no memory, no weights) to read
its head, layer groups, LoRA targets and feature stages; the input spec comes from the folder's own
tokenizer, image-processor or feature-extractor JSON files.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import zoo
from zoo.head_companions import HEAD_COMPANIONS

from .build import build_model, make_config
from .inputs import audio_settings, image_input, text_input
from .keys import FIT_LAYOUT, fit_to_model
from .structure import (
    Structure,
    covering_head,
    fresh_parameters,
    head_companions,
    head_path,
    positions_after_padding,
    structure,
)
from .tasks import CLASSIFICATION_TASKS, check_task, modality_of, trained_task

FAMILY = "transformers"
# The card extra key the core cuts a text checkpoint's max_length by (zoo.weights.saved_hf).
POSITIONS_AFTER_PADDING = "hf_positions_after_padding"
SAVED_CONFIG = "zoo_transformers.interchange:transformers_config"
# Config keys that say how transformers last stored the weights, not what the model is.
_DROPPED = ("_name_or_path", "torch_dtype", "dtype", "auto_map", "_attn_implementation_autoset")


def clean_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The config's architecture keys (no dtype, no path, no code map): what `build_model` needs."""
    return {k: v for k, v in config.items() if k not in _DROPPED and k not in ("zoo", "card", "labels", "task")}


def checkpoint_card(card: zoo.ModelCard, config: dict[str, Any], directory: Path, task: str | None,
                    builder_kwargs: Mapping[str, Any]) -> zoo.ModelCard:
    """`card` (one of the family's cards for any model type) made the card of this checkpoint."""
    modality = modality_of(config)
    trained = trained_task(config.get("architectures") or [], modality)
    task = task or trained or "feature-extraction"
    try:
        check_task(task, modality)
    except zoo.InvalidArgumentError as exc:
        raise zoo.WeightsError(f"{directory}: {exc}") from None
    defaults: dict[str, Any] = {k: v for k, v in builder_kwargs.items() if k not in ("task", "config", "repo")}
    defaults.update(task=task, config=clean_config(config))
    spec: Any
    if modality == "audio":
        spec, defaults["audio"] = audio_settings(config, directory)
    elif modality == "image":
        spec = image_input(config, directory)
    else:
        spec = text_input(config, directory, None)
        sentence = card.extra.get("sentence_pooling")
        if isinstance(sentence, Mapping) and isinstance(sentence.get("max_seq_length"), int):
            spec = dataclasses.replace(spec, max_length=sentence["max_seq_length"])
        if task == "feature-extraction":
            defaults.setdefault("pooling", "mean")
    held = stored_keys(directory) if task in CLASSIFICATION_TASKS else None
    derived = derive(defaults, trained_head=trained == task, stored=held)
    defaults["num_layers"] = derived["num_layers"]
    extra = {k: v for k, v in card.extra.items() if k not in ("hf_model_types", "hf_card", HEAD_COMPANIONS)}
    extra.update(derived["extra"])
    extra[POSITIONS_AFTER_PADDING] = derived["positions_after_padding"]
    return dataclasses.replace(
        card, name=f"{FAMILY}/{task}", task=task, modality=modality, defaults=defaults, input=spec,
        head=derived["head"], layer_groups=derived["layer_groups"], num_features=derived["num_features"],
        num_classes=derived["num_classes"], feature_stages=derived["feature_stages"], extra=extra)


def stored_keys(directory: Path) -> set[str] | None:
    """The tensor names of the folder's safetensors weights, read from the file headers (no tensor is read);
    None for a folder without them (a pickled ``pytorch_model.bin`` is not opened for this)."""
    from safetensors import safe_open

    index = directory / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map")
        return set(weight_map) if isinstance(weight_map, dict) else None
    single = directory / "model.safetensors"
    if not single.is_file():
        return None
    with safe_open(str(single), framework="pt") as fh:
        return set(fh.keys())


def derive(defaults: Mapping[str, Any], *, trained_head: bool, stored: set[str] | None = None) -> dict[str, Any]:
    """Card fields read off the model `defaults` build (built on the meta device).

    A classifier's head is the smallest module holding its output layer and every parameter the checkpoint
    does not hold (`stored`: the checkpoint's tensor names; without them, everything outside the encoder
    unless the checkpoint has a trained head), so a fresh dense layer trains with the head. Where only the
    whole model would hold them all (DeBERTa's pooler, wav2vec2's projector beside the classifier), the head
    is the output layer's module and the fresh modules beside it are ``extra["head_companions"]``
    (`zoo.head_companions`): they load, freeze, train and take rates as the head does.
    """
    task = defaults["task"]
    kwargs = {k: v for k, v in defaults.items() if k != "num_layers"}
    with torch.device("meta"):
        model = build_model(**kwargs)
    inner = model.transformers_model
    hf_config = inner.config
    head = "head"
    companions: list[str] = []
    if task in CLASSIFICATION_TASKS:
        fresh = _fresh(model, stored, trained_head)
        head = covering_head(model, head_path(inner, task, hf_config), fresh)
        companions = head_companions(model, head, fresh)
    found = structure(model, head, companions)
    key_args = {"task": task, "config": defaults["config"]}
    classes = 0 if task == "feature-extraction" else (
        hf_config.vocab_size if task == "automatic-speech-recognition" else hf_config.num_labels)
    extra = {"lora_targets": found.lora_targets, "hf_key_map": FIT_LAYOUT, "hf_key_map_args": key_args,
             "hf_architecture": type(inner).__name__,
             "saved_config": SAVED_CONFIG, "trained_head": trained_head}
    if companions:
        extra[HEAD_COMPANIONS] = companions
    output = model.get_submodule(head) if task != "feature-extraction" else None
    width = output.in_features if isinstance(output, torch.nn.Linear) else model.num_features  # what the head reads
    return {"head": head, "layer_groups": found.layer_groups, "num_layers": found.num_layers,
            "num_features": width, "num_classes": classes, "extra": extra,
            "positions_after_padding": positions_after_padding(inner),
            "feature_stages": feature_stages(model, found, hf_config)}


def _fresh(model: Any, stored: set[str] | None, trained_head: bool) -> list[str]:
    """The parameters the checkpoint leaves to a fresh initialisation (see `derive`)."""
    inner = model.transformers_model
    expected = set(model.state_dict())
    if stored is not None:
        return fresh_parameters(model, set(fit_to_model(dict.fromkeys(stored), inner, expected)))
    if trained_head:
        return []
    prefix = getattr(inner, "base_model_prefix", "") or ""
    return [name for name, _ in model.named_parameters() if not name.startswith(prefix + ".")]


def feature_stages(model: Any, found: Structure, hf_config: Any) -> list[dict[str, Any]]:
    """Image models' feature maps: each stage of a conv net, or each block of a patch transformer."""
    if model.modality != "image":
        return []
    sizes = getattr(hf_config, "hidden_sizes", None)
    if isinstance(sizes, (list, tuple)) and len(sizes) == found.num_layers:
        first = getattr(hf_config, "patch_size", 4)
        first = first if isinstance(first, int) else 4
        return [{"module": f"{found.layers}.{i}", "channels": int(width), "reduction": first * 2**i}
                for i, width in enumerate(sizes)]
    patch = getattr(hf_config, "patch_size", None)
    width = getattr(hf_config, "hidden_size", None)
    if not isinstance(patch, int) or not isinstance(width, int):
        return []
    prefix = 1 + int(getattr(hf_config, "num_register_tokens", 0) or 0)
    return [{"module": f"{found.layers}.{i}", "channels": width, "reduction": patch, "layout": "NLC",
             "prefix_tokens": prefix} for i in range(found.num_layers)]


__all__ = ["checkpoint_card", "clean_config", "derive", "make_config"]
