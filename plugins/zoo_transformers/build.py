"""The builder every card of the family names: transformers builds the architecture from its config, never
from code in a checkpoint and never with weights (zoo loads those)."""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zoo

from .lean import building
from .tasks import AUTO_CLASSES, CLASSIFICATION_TASKS, INSTALL_HINT, check_task, modality_of

# Keys zoo writes into a saved config.json beside transformers' own; never passed to transformers.
_NOT_CONFIG = ("zoo", "card", "num_classes", "labels", "task", "auto_map")


def transformers_module() -> Any:
    """The transformers package, or a `zoo.PluginError` saying which extra to install."""
    try:
        import transformers
    except ModuleNotFoundError as exc:
        if exc.name != "transformers":
            raise
        raise zoo.PluginError(f"the transformers family needs the transformers package, which is not installed: "
                              f"{INSTALL_HINT}") from exc
    return transformers


def make_config(config: Mapping[str, Any]) -> Any:
    """A transformers config object from a config.json's keys, for a model type transformers itself defines."""
    transformers = transformers_module()
    if "auto_map" in config:
        raise zoo.UntrustedCodeError(f"config {config.get('_name_or_path', '')!r} ships its own model code "
                                     "(auto_map); zoo never runs code from a checkpoint")
    model_type = config.get("model_type")
    known = transformers.CONFIG_MAPPING
    if not isinstance(model_type, str) or model_type not in known:
        raise zoo.WeightsError(f"transformers {transformers.__version__} has no model type {model_type!r}; "
                               "upgrade transformers, or use a checkpoint of a model type it defines")
    values = {k: plain(v) for k, v in config.items() if k not in _NOT_CONFIG and k != "model_type"}
    return transformers.AutoConfig.for_model(model_type, **values)


def plain(value: Any) -> Any:
    """A card's read-only JSON value as fresh dicts and lists (transformers fills in config dicts in place)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def hub_config(repo: str) -> dict[str, Any]:
    """config.json of a Hub repo, through huggingface_hub's cache (honours ``HF_HUB_OFFLINE``)."""
    try:
        path = hub_file(repo, "config.json")
    except Exception as exc:  # noqa: BLE001 - offline, missing or refused: one clear message
        raise zoo.WeightsError(f"cannot read config.json of hf-hub:{repo}: {type(exc).__name__}: {exc}. Connect "
                               "to the Hub once (or unset HF_HUB_OFFLINE) so the file is cached") from None
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise zoo.WeightsError(f"config.json of hf-hub:{repo} is not a JSON object")
    return data


def hub_folder(repo: str, filename: str) -> Path | None:
    """The cached snapshot folder holding `filename` of a Hub repo, or None where the repo has no such file."""
    try:
        return Path(hub_file(repo, filename)).parent
    except Exception:  # noqa: BLE001 - an optional file: absent, offline and uncached, or refused
        return None


def hub_file(repo: str, filename: str) -> str:
    """A small file of a Hub repo: the copy in the Hugging Face cache (the snapshot ``main`` points at, which
    fetching the weights has just brought up to date), else downloaded.

    Reading the cache first keeps creation off the network and spares huggingface_hub's HTTP client, which it
    sets up even in offline mode (tens of milliseconds, on every creation)."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache

    cached = try_to_load_from_cache(repo, filename)
    if isinstance(cached, str):
        return cached
    return str(hf_hub_download(repo, filename))


def build_model(*, task: str, config: Mapping[str, Any] | None = None, repo: str | None = None,
                num_classes: int | None = None, pooling: str | None = None, normalize: bool = False,
                audio: Mapping[str, Any] | None = None, num_layers: int | None = None,
                drop_rate: float | None = None, shape: Mapping[str, Any] | None = None) -> Any:
    """A `zoo_transformers.model.TransformersModel` for `task` from a transformers config (or a Hub repo's).

    `num_classes` replaces the classifier's outputs (its ``num_labels``; a CTC model's vocabulary); 0 removes
    the head so the model returns what the head reads. For feature extraction, `pooling` (``cls``, ``mean``,
    ``max``, ``lasttoken``; text only) and `normalize` say how tokens become one vector, and `num_classes` adds
    a linear head on it. `audio` holds the checkpoint's feature-extractor settings. With `repo`, the repo's
    config.json is read through the Hub cache; `shape` (a curated card's published shape) stands in for it
    when it cannot be read, so ``pretrained=False`` builds offline.
    """
    transformers = transformers_module()
    if config is None:
        if repo is None:
            raise zoo.InvalidArgumentError("build_model needs config= (a transformers config as a dict) or repo=")
        try:
            config = hub_config(repo)
        except zoo.WeightsError:
            if shape is None:
                raise
            config = shape  # offline and uncached: the published shape the card stores (random weights only)
        if audio is None and modality_of(config) == "audio":
            from .inputs import audio_settings

            audio = audio_settings(config, hub_folder(repo, "preprocessor_config.json"))[1]
    from .model import TransformersModel

    modality = modality_of(config)
    check_task(task, modality)
    hf_config = make_config(config)
    if drop_rate is not None:
        for key in ("hidden_dropout_prob", "hidden_dropout", "dropout"):
            if hasattr(hf_config, key):
                setattr(hf_config, key, drop_rate)
    head_classes = num_classes if task in CLASSIFICATION_TASKS and num_classes else None
    if head_classes is not None:
        if task == "automatic-speech-recognition":
            hf_config.vocab_size = head_classes
        else:
            hf_config.num_labels = head_classes
    auto = getattr(transformers, AUTO_CLASSES[(task, modality)])
    options = {"add_pooling_layer": False} if task == "feature-extraction" and _takes_pooling_layer(hf_config) else {}
    with building(transformers):
        inner = auto.from_config(hf_config, **options)
    width = feature_width(hf_config)
    model = TransformersModel(inner, task=task, modality=modality, pooling=pooling, normalize=normalize,
                              num_classes=num_classes or 0 if task == "feature-extraction" else 0,
                              num_features=width, audio=audio, num_layers=num_layers)
    if task in CLASSIFICATION_TASKS and num_classes == 0:
        from .structure import head_path

        path = head_path(inner, task, hf_config)
        model.set_submodule(path, _identity())
    return model


def _identity() -> Any:
    from torch import nn

    return nn.Identity()


def _takes_pooling_layer(hf_config: Any) -> bool:
    """Whether the encoder class has an optional pooler (BERT's), left out for feature extraction."""
    import inspect

    transformers = transformers_module()
    cls = transformers.MODEL_MAPPING.get(type(hf_config), None)
    if cls is None:
        return False
    return "add_pooling_layer" in inspect.signature(cls.__init__).parameters


def feature_width(hf_config: Any) -> int | None:
    """The width of the encoder's last hidden states (``hidden_size``, or a conv net's last stage)."""
    sizes = getattr(hf_config, "hidden_sizes", None)
    if isinstance(sizes, (list, tuple)) and sizes:
        return int(sizes[-1])
    width = getattr(hf_config, "hidden_size", None)
    return int(width) if isinstance(width, int) else None
