"""`save_pretrained` and `push_to_hub`: a directory that `zoo.create("local-dir:DIR")` rebuilds.

Layout (what the Hub shows as a model repo):
    config.json         {"zoo": {...}, "card": <ModelCard.to_dict()>, "num_classes": n, "labels": [...]}
    model.safetensors   the state dict (LoRA adapters merged; tied weights stored once)
    README.md           a model card with Hub metadata
    + small side files (tokenizer, vocabulary) the weights came with, if any
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from ..cards import ModelCard
from ..errors import WeightsError
from .formats import write_safetensors, write_text

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".h5", ".msgpack", ".onnx")
_SIDE_FILE_LIMIT = 50 * 1024 * 1024


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict to save: LoRA adapters folded in (without changing `model`), each tied tensor once."""
    state = dict(model.state_dict())
    try:
        from ..finetune.lora import LoRALinear
    except ImportError:
        LoRALinear = None  # noqa: N806
    if LoRALinear is not None:
        for name, module in model.named_modules():
            if isinstance(module, LoRALinear):
                prefix = f"{name}." if name else ""
                for key in [k for k in state if k.startswith(prefix)]:
                    del state[key]
                state.update({prefix + k: v for k, v in module.merged().state_dict().items()})
    out: dict[str, torch.Tensor] = {}
    seen_views: set[tuple] = set()
    seen_storages: set[int] = set()
    for key, tensor in state.items():
        if tensor.is_meta:
            raise WeightsError(f"cannot save: {key} has no data (meta device)")
        tensor = tensor.detach().to("cpu")
        if tensor.numel():
            pointer = tensor.untyped_storage().data_ptr()
            view = (pointer, tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
            if view in seen_views:
                continue  # tied to an earlier name; loading ties it again
            if pointer in seen_storages:
                tensor = tensor.clone()  # a different view of a tensor already saved: its own copy
            seen_views.add(view)
            seen_storages.add(pointer)
        out[key] = tensor.contiguous()
    return out


def _labels(card: ModelCard, labels: Sequence[str] | None) -> list[str] | None:
    if labels is not None:
        return list(labels)
    if card.extra.get("labels"):
        return list(card.extra["labels"])
    tag = card.default_weights
    weights = card.weights.get(tag) if tag else None
    if weights is not None and weights.labels and len(weights.labels) == card.num_classes:
        return list(weights.labels)
    return None


def build_config(card: ModelCard, labels: list[str] | None) -> dict[str, Any]:
    from .. import __version__

    extra = {k: v for k, v in card.extra.items() if k != "weights_location"}
    saved = ModelCard.from_dict({**card.to_dict(), "extra": extra})
    return {
        "zoo": {"format": FORMAT_VERSION, "version": __version__},
        "card": saved.to_dict(),
        "num_classes": card.num_classes,
        "labels": labels,
        "task": card.task,
    }


def readme_text(card: ModelCard, labels: list[str] | None, repo_id: str | None = None) -> str:
    tag = card.default_weights
    weights = card.weights.get(tag) if tag else None
    meta = ["---", "library_name: zoo", f"pipeline_tag: {card.task}", "tags:", "- zoo", f"- {card.modality}"]
    if card.family:
        meta.append(f"- {card.family}")
    if weights is not None and weights.license:
        meta.append(f"license: {weights.license}")
    meta.append("---")
    where = f"hf-hub:{repo_id}" if repo_id else "local-dir:PATH/TO/THIS/DIRECTORY"
    body = [
        f"# {card.name}", "",
        card.description or f"A {card.task} model ({card.modality}).", "",
        "## Use", "", "```python", "import zoo", "", f'model = zoo.create("{where}")', "```", "",
        "## Details", "",
        f"- architecture: `{card.recipe.model if card.recipe else card.name}` (builder `{card.builder}`)",
        f"- task: {card.task}; outputs: {card.num_classes if card.num_classes is not None else 'features'}",
    ]
    if tag:
        body.append(f"- started from weights `{tag}`" + (f" ({weights.source})" if weights is not None else ""))
    if labels:
        shown = ", ".join(labels[:20]) + (f" (+{len(labels) - 20} more)" if len(labels) > 20 else "")
        body.append(f"- labels: {shown}")
    if weights is not None and weights.metrics:
        body.append("- metrics of the starting weights: " + ", ".join(f"{k}={v}" for k, v in weights.metrics.items()))
    return "\n".join(meta + [""] + body) + "\n"


def _copy_side_files(card: ModelCard, directory: Path) -> list[str]:
    """Small files that came with the weights (tokenizer, vocabulary), so the saved model is whole."""
    location = card.extra.get("weights_location")
    if not location:
        return []
    source = Path(location)
    if not source.is_dir() or source.resolve() == directory.resolve():
        return []  # a single weights file (URL cache, local file) has no side files of its own
    copied = []
    for item in sorted(source.iterdir()):
        if (not item.is_file() or item.name in (CONFIG_NAME, "README.md") or item.suffix in _WEIGHT_SUFFIXES
                or item.name.endswith(".index.json") or item.name.startswith(".")
                or item.stat().st_size > _SIDE_FILE_LIMIT):
            continue
        tmp = directory / f".{item.name}.tmp"
        shutil.copyfile(item, tmp)
        tmp.replace(directory / item.name)
        copied.append(item.name)
    return copied


def save_pretrained(model: nn.Module, directory: str | Path, *, labels: Sequence[str] | None = None,
                    repo_id: str | None = None) -> Path:
    """Save `model` (created by zoo) so that ``zoo.create("local-dir:DIR")`` rebuilds it.

    Writes ``config.json`` (the card, class count, labels), ``model.safetensors`` and ``README.md``;
    every file goes through a temporary name, so an interrupted save leaves the previous files whole.
    """
    from ..factory import card_of

    card = card_of(model)
    directory = Path(directory).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    names = _labels(card, labels)
    if names is not None and card.num_classes not in (None, len(names)):
        raise WeightsError(f"{len(names)} labels given, but the model has {card.num_classes} outputs")
    _copy_side_files(card, directory)
    write_safetensors(plain_state_dict(model), directory / WEIGHTS_NAME)
    write_text(directory / CONFIG_NAME, json.dumps(build_config(card, names), indent=2) + "\n")
    write_text(directory / "README.md", readme_text(card, names, repo_id))
    return directory


def push_to_hub(model: nn.Module, repo_id: str, *, token: str | bool | None = None, private: bool | None = None,
                revision: str | None = None, commit_message: str = "Upload model saved with zoo",
                labels: Sequence[str] | None = None, create_repo: bool = True) -> Any:
    """Save `model` as `save_pretrained` does and upload the files to a Hub model repo.

    Returns huggingface_hub's commit info. `token` defaults to ``HF_TOKEN`` or the stored login.
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        save_pretrained(model, tmp, labels=labels, repo_id=repo_id)
        if create_repo:
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        return api.upload_folder(repo_id=repo_id, folder_path=tmp, repo_type="model", revision=revision,
                                 commit_message=commit_message)
