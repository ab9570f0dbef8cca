"""``zoo.create("local-dir:DIR")`` and ``zoo.create("hf-hub:org/repo[@revision]")``.

Two kinds of directories load:
* zoo's own format (``config.json`` with a ``"zoo"`` key, written by `save_pretrained`): the card
  inside names the builder and its arguments; the model is rebuilt exactly as it was saved.
* Hugging Face ``transformers`` checkpoints (``config.json`` with ``"model_type"``): a registered
  card that lists that model type in ``extra["hf_model_types"]`` builds it, with
  ``extra["hf_config_to_kwargs"]`` turning the config into builder arguments and
  ``extra["hf_key_map"]`` renaming the checkpoint's keys.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from ..cards import ModelCard, Recipe
from ..errors import DuplicateModelError, InvalidArgumentError, WeightsError
from .formats import StateDict, read_state_dict
from .loading import apply_key_map, build_and_load, import_function, with_location
from .saving import CONFIG_NAME
from .sources import hf_snapshot

LOCAL_PREFIX = "local-dir:"
HUB_PREFIX = "hf-hub:"
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.md", "*.model"]
_PICKLE_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_SAFETENSORS_NAMES = ("model.safetensors", "model.safetensors.index.json")


def saved_directory(name: str, *, token: str | bool | None = None) -> Path:
    """The local directory a ``local-dir:`` or ``hf-hub:`` name refers to (downloading if needed)."""
    if name.startswith(LOCAL_PREFIX):
        directory = Path(name[len(LOCAL_PREFIX):]).expanduser()
        if not directory.is_dir():
            raise WeightsError(f"{name}: no such directory; save a model there with zoo.save_pretrained(model, DIR)")
        return directory
    if not name.startswith(HUB_PREFIX):
        raise WeightsError(f"{name!r} is neither 'local-dir:PATH' nor 'hf-hub:org/repo'")
    repo, _, revision = name[len(HUB_PREFIX):].partition("@")
    if repo.count("/") != 1:
        raise WeightsError(f"{name}: a Hub repo is named 'org/repo', optionally with '@revision'")
    folder = hf_snapshot(repo, revision=revision or None, patterns=_HUB_PATTERNS, token=token, what=name)
    if not any((folder / n).exists() for n in _SAFETENSORS_NAMES):
        folder = hf_snapshot(repo, revision=revision or None, patterns=_HUB_PATTERNS + ["pytorch_model*.bin"],
                             token=token, what=name)
    return folder


def weights_file(directory: Path) -> Path:
    for name in _SAFETENSORS_NAMES + _PICKLE_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise WeightsError(f"{directory} holds no weights: expected {' or '.join(_SAFETENSORS_NAMES + _PICKLE_NAMES)}")


def read_config(directory: Path) -> dict[str, Any]:
    path = directory / CONFIG_NAME
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise WeightsError(f"{directory} has no {CONFIG_NAME}: it is not a saved model; "
                           "save one with zoo.save_pretrained(model, DIR)") from None
    except ValueError as exc:
        raise WeightsError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise WeightsError(f"{path} must hold a JSON object")
    return config


def create_saved(name: str, *, pretrained: bool | None = None, num_classes: int | None = None, freeze: Any = None,
                 **kwargs: Any) -> nn.Module:
    """Build a model saved by `save_pretrained` or a transformers checkpoint, from a directory or the Hub.

    `pretrained=False` builds the architecture without loading the weights. `num_classes` and
    `freeze` act as in `zoo.create`; ``task=`` picks among families for a transformers checkpoint;
    ``token=`` is passed to huggingface_hub; other keywords go to the builder.
    """
    token = kwargs.pop("token", None)
    freeze_bn = kwargs.pop("freeze_bn", "frozen")
    task = kwargs.pop("task", None)
    directory = saved_directory(name, token=token)
    config = read_config(directory)
    load = pretrained is None or bool(pretrained)
    if "zoo" in config:
        model = _rebuild_zoo(directory, config, kwargs, load=load)
    elif "model_type" in config:
        model = _build_transformers(directory, config, kwargs, task=task, load=load)
    else:
        raise WeightsError(f"{directory / CONFIG_NAME} is neither a zoo config (key 'zoo') "
                           "nor a transformers config (key 'model_type')")
    return _finish(model, num_classes=num_classes, freeze=freeze, freeze_bn=freeze_bn)


def _finish(model: nn.Module, *, num_classes: int | None, freeze: Any, freeze_bn: str) -> nn.Module:
    from ..factory import card_of

    if num_classes is not None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0:
            raise InvalidArgumentError(f"num_classes must be a non-negative integer, got {num_classes!r}")
        if num_classes != card_of(model).num_classes:
            from ..finetune.heads import reset_head

            reset_head(model, num_classes)
    if freeze is not None:
        from ..finetune.freezing import freeze as freeze_model

        freeze_model(model, freeze, bn=freeze_bn)
    return model


# ---------------------------------------------------------------------------- zoo's own format


def _rebuild_zoo(directory: Path, config: Mapping[str, Any], kwargs: dict[str, Any], *, load: bool) -> nn.Module:
    from ..factory import attach_card, call_builder, check_kwargs, import_builder

    card = ModelCard.from_dict(config["card"])
    builder = import_builder(card)
    builder_kwargs = {**card.defaults, **kwargs}
    check_kwargs(card, builder, builder_kwargs)
    saved_classes = config.get("num_classes", card.num_classes)
    labels = config.get("labels")
    extra = {**card.extra, **({"labels": list(labels)} if labels else {})}
    card = dataclasses.replace(card, defaults=builder_kwargs, extra=extra)

    def prepare(model: nn.Module) -> None:
        """Give the model the head it had when saved (reset_head replays what the user did)."""
        attach_card(model, card)
        if saved_classes is None or not card.head:
            return
        from ..finetune.heads import get_head, output_layer, reset_head

        _, head = get_head(model)
        found = output_layer(head)
        outputs = getattr(found[1], "out_features", getattr(found[1], "out_channels", None)) if found else None
        if (saved_classes == 0 and not isinstance(head, nn.Identity)) or (saved_classes and outputs != saved_classes):
            reset_head(model, saved_classes)

    if not load:
        model = call_builder(card, builder, builder_kwargs)
        prepare(model)
        return model
    path = weights_file(directory)
    model = build_and_load(card, builder, builder_kwargs, read_state_dict(path), head_optional=False,
                           where=str(path), prepare=prepare)
    from ..factory import card_of

    attach_card(model, with_location(card_of(model), directory))
    return model


# ---------------------------------------------------------------------------- transformers checkpoints


def _hf_cards(model_type: str) -> list[ModelCard]:
    from ..registry import default_registry

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


def choose_card(model_type: str, task: str | None) -> ModelCard:
    """The registered card for a transformers `model_type`: of `task` if given, else feature extraction first."""
    cards = _hf_cards(model_type)
    if not cards:
        raise WeightsError(f"no registered model loads transformers model_type {model_type!r}; install a family "
                           "plugin whose cards list it in extra['hf_model_types'] (see `zoo plugins`)")
    if task is not None:
        matching = [c for c in cards if c.task == task]
        if not matching:
            tasks = sorted({c.task for c in cards})
            raise WeightsError(f"no registered model loads model_type {model_type!r} for task {task!r}; "
                               f"tasks available: {', '.join(tasks)}")
        return matching[0]
    features = [c for c in cards if c.task == "feature-extraction"]
    return (features or cards)[0]


def _build_transformers(directory: Path, config: Mapping[str, Any], kwargs: dict[str, Any], *, task: str | None,
                        load: bool) -> nn.Module:
    from ..factory import attach_card, call_builder, check_kwargs, import_builder

    card = choose_card(str(config["model_type"]), task)
    builder = import_builder(card)
    to_kwargs = card.extra.get("hf_config_to_kwargs")
    derived = import_function(to_kwargs, f"config converter of {card.name}")(dict(config)) if to_kwargs else {}
    builder_kwargs = {**card.defaults, **dict(derived or {}), **kwargs}
    check_kwargs(card, builder, builder_kwargs)
    labels = _config_labels(config)
    built_classes = builder_kwargs.get("num_classes", card.classes())
    extra = {**card.extra, **({"labels": labels} if labels and len(labels) == built_classes else {})}
    card = dataclasses.replace(card, defaults=builder_kwargs, num_classes=built_classes, default_weights=None,
                               extra=extra)
    if not load:
        model = call_builder(card, builder, builder_kwargs)
    else:
        path = weights_file(directory)
        state: StateDict = apply_key_map(read_state_dict(path), card.extra.get("hf_key_map"), card.name)
        model = build_and_load(card, builder, builder_kwargs, state, head_optional=True, where=str(path))
    attach_card(model, with_location(card, directory))
    return model


def _config_labels(config: Mapping[str, Any]) -> list[str] | None:
    id2label = config.get("id2label")
    if not isinstance(id2label, Mapping) or not id2label:
        return None
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (TypeError, ValueError):
        return None
