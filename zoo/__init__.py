"""zoo: one registry of image, text and speech models for PyTorch, and one fine-tune API.

    >>> import zoo
    >>> zoo.list_models("resnet*", pretrained=True)
    >>> model = zoo.create("resnet_ft", num_classes=5)

Importing zoo, listing and reading cards import neither torch nor any plugin's model
code; `zoo.create`, `zoo.finetune` and `zoo.testing` (checks for plugin authors) do.
"""
from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._version import __version__
from .cards import (
    AudioInput,
    ImageInput,
    ModelCard,
    Recipe,
    TextInput,
    WeightsCard,
    card_of,
)
from .errors import (
    CardError,
    DuplicateModelError,
    InvalidArgumentError,
    PluginError,
    UnknownModelError,
    UnknownWeightsError,
    WeightsError,
    ZooError,
)
from .factory import create
from .names import is_saved_name
from .plugin_api import PLUGIN_API_VERSION, Registrar
from .plugins import PluginInfo, list_plugins
from .registry import Registry, default_registry

if TYPE_CHECKING:
    import torch


__all__ = [
    "PLUGIN_API_VERSION", "AudioInput", "CardError", "DuplicateModelError", "ImageInput", "InvalidArgumentError",
    "ModelCard", "PluginError", "PluginInfo", "Recipe", "Registrar", "Registry", "TextInput", "UnknownModelError",
    "UnknownWeightsError", "WeightsCard", "WeightsError", "ZooError", "card_of", "create", "default_registry",
    "__version__", "export", "features", "finetune", "get_card", "list_models", "list_plugins", "pipeline",
    "push_to_hub", "save_pretrained", "testing",
]


def list_models(pattern: str | Sequence[str] | None = None, *, exclude: str | Sequence[str] | None = None,
                task: str | None = None, modality: str | None = None, family: str | None = None,
                pretrained: bool = False) -> list[str]:
    """Sorted model names; `pattern` is a shell wildcard (``"resnet*"``) or a list of them.

    `exclude` (a wildcard or a list) drops the names it matches: ``list_models(["resnet*",
    "convnext*"], exclude="*_ft")``. Filters keep models of one `task`
    (``"image-classification"``), `modality` (``"image"``, ``"text"``, ``"audio"``) or
    `family`. With ``pretrained=True`` only models with weights are listed, each set of
    weights also as ``name.tag``.
    """
    return default_registry().list_models(pattern, exclude=exclude, task=task, modality=modality, family=family,
                                          pretrained=pretrained)


def get_card(name: str) -> ModelCard:
    """The card of a model, recipe, alias or ``name.tag``, without building anything.

    For ``local-dir:PATH`` and ``hf-hub:org/repo`` it is the saved model's card, read from its
    ``config.json`` (this imports torch).
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"a model name is a string such as 'resnet50' or 'local-dir:PATH', got {name!r}")
    if is_saved_name(name):
        from .weights.saved import saved_card

        return saved_card(name)
    return default_registry().get_card(name)


def save_pretrained(model: torch.nn.Module, directory: str, **kwargs: Any) -> Any:
    """Write ``config.json``, ``model.safetensors`` and ``README.md`` so `create("local-dir:...")` rebuilds it."""
    from .weights import save_pretrained as _save

    return _save(model, directory, **kwargs)


def push_to_hub(model: torch.nn.Module, repo_id: str, **kwargs: Any) -> Any:
    """Save a model as `save_pretrained` does and upload it to a Hugging Face Hub repo."""
    from .weights import push_to_hub as _push

    return _push(model, repo_id, **kwargs)


def __getattr__(name: str) -> Any:
    if name in ("features", "finetune", "testing"):  # they import torch, so only on first use
        return importlib.import_module(f".{name}", __name__)
    if name == "pipeline":  # zoo.pipelines imports torch, so only on first use
        return importlib.import_module(".pipelines", __name__).pipeline
    if name == "export":  # zoo.exports imports torch, so only on first use
        return importlib.import_module(".exports", __name__).export
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
