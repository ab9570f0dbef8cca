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
import stat
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from ..cards import ImageInput, ModelCard, Recipe
from ..errors import CardError, DuplicateModelError, InvalidArgumentError, UntrustedCodeError, WeightsError
from ..factory import (MAX_IMAGE_SIDE, attach_card, call_builder, card_of, check_input_sizes, check_kwargs,
                       checked_num_classes, import_builder)
from ..names import HUB_PREFIX, LOCAL_PREFIX
from ..trust import check_registered
from .formats import StateDict, read_state_dict
from .loading import apply_key_map, build_and_load, import_function, with_location
from .saving import CONFIG_NAME, check_saved_weights
from .sources import check_hub_repo_id, hf_snapshot

_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.md", "*.model"]
_PICKLE_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_SAFETENSORS_NAMES = ("model.safetensors", "model.safetensors.index.json")
CONFIG_SIZE_LIMIT = 16 * 1024 * 1024


def saved_directory(name: str, *, token: str | bool | None = None) -> Path:
    """The local directory a ``local-dir:`` or ``hf-hub:`` name refers to (downloading if needed)."""
    if name.startswith(LOCAL_PREFIX):
        directory = Path(name[len(LOCAL_PREFIX):]).expanduser()
        try:
            found = directory.is_dir()
        except OSError as exc:  # a name too long for the file system, a loop of links
            raise WeightsError(f"{name[:200]}: cannot use this path ({exc.strerror or exc})") from None
        if not found:
            raise WeightsError(f"{name}: no such directory; save a model there with zoo.save_pretrained(model, DIR)")
        return directory
    if not name.startswith(HUB_PREFIX):
        raise WeightsError(f"{name!r} is neither 'local-dir:PATH' nor 'hf-hub:org/repo'")
    repo, _, revision = name[len(HUB_PREFIX):].partition("@")
    check_hub_repo_id(repo)
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
    """The folder's ``config.json``: a regular file of at most `CONFIG_SIZE_LIMIT` bytes holding a JSON object."""
    path = directory / CONFIG_NAME
    try:
        info = path.stat()
    except FileNotFoundError:
        raise WeightsError(f"{directory} has no {CONFIG_NAME}: it is not a saved model; "
                           "save one with zoo.save_pretrained(model, DIR)") from None
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(f"{path} is not a regular file (a device, pipe or folder); a saved model's "
                           f"{CONFIG_NAME} is a small JSON file")
    if info.st_size > CONFIG_SIZE_LIMIT:
        raise WeightsError(f"{path} is {info.st_size} bytes; a {CONFIG_NAME} is at most {CONFIG_SIZE_LIMIT} bytes")
    try:
        with path.open("rb") as fh:
            config = json.loads(fh.read(CONFIG_SIZE_LIMIT + 1))
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise WeightsError(f"{path} is not valid JSON: {exc}") from None
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
    directory, config = open_saved(name, token=token)
    load = True if pretrained is None else pretrained
    if "zoo" in config:
        model = _rebuild_zoo(directory, config, kwargs, load=load)
    else:
        model = _build_transformers(directory, config, kwargs, task=task, load=load)
    return _finish(model, num_classes=num_classes, freeze=freeze, freeze_bn=freeze_bn)


def open_saved(name: str, *, token: str | bool | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder of a ``local-dir:``/``hf-hub:`` name and its config, refused if it ships code of its own."""
    directory = saved_directory(name, token=token)
    config = read_config(directory)
    where = directory / CONFIG_NAME
    if "auto_map" in config:
        raise UntrustedCodeError(
            f"{where} ships its own model code (auto_map: {config['auto_map']!r}); zoo never imports code "
            "from a model folder or Hub repo. Load it with transformers' trust_remote_code=True only after "
            "reading that code, or use a checkpoint of a model type an installed family supports.")
    if "zoo" not in config and "model_type" not in config:
        raise WeightsError(f"{where} is neither a zoo config (key 'zoo') nor a transformers config (key 'model_type')")
    return directory, config


def saved_card(name: str, *, token: str | bool | None = None, task: str | None = None) -> ModelCard:
    """The card of a saved model or transformers checkpoint, read without building it (`zoo info`)."""
    directory, config = open_saved(name, token=token)
    if "zoo" in config:
        card, _ = _zoo_card(config, directory / CONFIG_NAME)
        return card
    return _transformers_card(config, directory / CONFIG_NAME, task=task)


def _finish(model: nn.Module, *, num_classes: int | None, freeze: Any, freeze_bn: str) -> nn.Module:
    if checked_num_classes(num_classes) is not None:
        if num_classes != card_of(model).num_classes:
            from ..finetune.heads import reset_head

            reset_head(model, num_classes)
    if freeze is not None:
        from ..finetune.freezing import freeze as freeze_model

        freeze_model(model, freeze, bn=freeze_bn)
    return model


# ---------------------------------------------------------------------------- zoo's own format


def _rebuild_zoo(directory: Path, config: Mapping[str, Any], kwargs: dict[str, Any], *, load: bool) -> nn.Module:
    where = directory / CONFIG_NAME
    card, saved_classes = _zoo_card(config, where)
    check_registered(card.builder, what=str(where))
    builder = import_builder(card)
    builder_kwargs = {**card.defaults, **kwargs}
    check_kwargs(card, builder, builder_kwargs)
    card = dataclasses.replace(card, defaults=builder_kwargs)

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
    check_saved_weights(directory, config, path)
    model = build_and_load(card, builder, builder_kwargs, read_state_dict(path), head_optional=False,
                           where=str(path), prepare=prepare)
    attach_card(model, with_location(card_of(model), directory))
    return model


def _zoo_card(config: Mapping[str, Any], where: Path) -> tuple[ModelCard, int | None]:
    """The card a zoo config holds, with its saved labels; and the class count the saved head has."""
    card = _saved_card(config, where)
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
    card = _transformers_card(config, directory / CONFIG_NAME, task=task, kwargs=kwargs)
    builder = import_builder(card)
    check_kwargs(card, builder, dict(card.defaults))
    if not load:
        model = call_builder(card, builder, dict(card.defaults))
    else:
        path = weights_file(directory)
        state: StateDict = apply_key_map(read_state_dict(path), card.extra.get("hf_key_map"), card.name)
        model = build_and_load(card, builder, dict(card.defaults), state, head_optional=True, where=str(path))
    attach_card(model, with_location(card, directory))
    return model


def _transformers_card(config: Mapping[str, Any], where: Path, *, task: str | None,
                       kwargs: Mapping[str, Any] | None = None) -> ModelCard:
    """The registered card that builds this checkpoint, with builder arguments and labels from its config."""
    model_type = config["model_type"]
    if not isinstance(model_type, str):
        raise WeightsError(f"{where}: 'model_type' must be a string, got {model_type!r}")
    card = choose_card(model_type, task)
    to_kwargs = card.extra.get("hf_config_to_kwargs")
    derived = _derived_kwargs(import_function(to_kwargs, f"config converter of {card.name}"), config, where) \
        if to_kwargs else {}
    builder_kwargs = {**card.defaults, **derived, **(kwargs or {})}
    labels = _config_labels(config)
    built_classes = builder_kwargs.get("num_classes", card.class_count())
    extra = {**card.extra, **({"labels": labels} if labels and len(labels) == built_classes else {})}
    return dataclasses.replace(card, defaults=builder_kwargs, num_classes=built_classes, default_weights=None,
                               extra=extra)


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
