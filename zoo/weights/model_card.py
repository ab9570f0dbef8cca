"""The ``README.md`` of a saved model: a Hugging Face model card, written with huggingface_hub's `ModelCard`.

Its metadata is what the Hub reads: ``library_name: zoo``, ``pipeline_tag`` (the task), tags,
``base_model`` (the Hub repo the starting weights came from; other sources have no Hub id and
are named in the text only), ``datasets`` (names, never local paths), the licence of the starting
weights, and the saved epoch's metrics as ``model-index``. The text says how to load the model,
what it predicts, and warns when the licence does not allow commercial use.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ..cards import ModelCard as ZooCard
from ..errors import InvalidArgumentError
from ..names import HUB_PREFIX
from .formats import read_small_file

# Creative Commons "NonCommercial" licences as the Hub names them: cc-by-nc-4.0, cc-by-nc-sa-4.0, ...
_NON_COMMERCIAL = re.compile(r"(?:^|-)nc(?:-|$)")
_LABELS_SHOWN = 20
_README_LIMIT = 1024 * 1024


def base_model_of(card: ZooCard) -> str | None:
    """The Hub repo the model started from: the repo it was loaded from, else its starting weights' repo."""
    loaded_from = card.extra.get("base_model")
    if isinstance(loaded_from, str) and loaded_from:
        return loaded_from
    weights = card.weights.get(card.default_weights) if card.default_weights else None
    if weights is None or not weights.source.startswith(HUB_PREFIX):
        return None
    return weights.source[len(HUB_PREFIX):].partition("@")[0]


def license_of(card: ZooCard) -> str | None:
    """The licence of the starting weights (or of the checkpoint the model was loaded from), as a Hub licence id."""
    weights = card.weights.get(card.default_weights) if card.default_weights else None
    found = weights.license if weights is not None and weights.license else card.extra.get("license")
    return found.strip().lower() if isinstance(found, str) and found.strip() else None


def is_non_commercial(license_id: str | None) -> bool:
    """Whether a Hub licence id is a non-commercial one (``cc-by-nc-4.0``, ``cc-by-nc-sa-4.0`` ...)."""
    return bool(license_id) and _NON_COMMERCIAL.search(license_id or "") is not None


def non_commercial_warning(license_id: str) -> str:
    return (f"the starting weights are licensed {license_id}, which does not allow commercial use; "
            "a model fine-tuned from them carries the same restriction")


def readme_license(path: Path) -> str | None:
    """The ``license`` in the metadata of a model card file (a checkpoint's README.md), if it names one."""
    try:
        text = read_small_file(path, _README_LIMIT, what="model card").decode("utf-8")
        found = getattr(ModelCard(text, ignore_metadata_errors=True).data, "license", None)
    except Exception:  # unreadable, not UTF-8, malformed YAML (pyyaml's own errors): no licence to inherit
        return None
    return found if isinstance(found, str) and found.strip() else None


def dataset_name(value: str | os.PathLike[str]) -> str:
    """How a model card names a dataset: a Hub dataset id or a name as given; a local folder or file by its
    name alone (``/data/flowers`` -> ``flowers``, ``reviews.csv`` -> ``reviews``), never its path."""
    text = os.fspath(value).strip()
    if not text:
        raise InvalidArgumentError("a dataset name is empty; give the dataset's name or its folder")
    path = Path(text).expanduser()
    local = isinstance(value, os.PathLike) or path.is_absolute() or text.startswith((".", "~")) or "\\" in text \
        or path.exists()
    if not local:
        return text
    path = path.resolve()
    return path.stem if path.is_file() else path.name


def model_card(card: ZooCard, labels: Sequence[str] | None, *, repo_id: str | None = None,
               base_model: str | None = None, datasets: Sequence[str] = (),
               metrics: Mapping[str, Any] | None = None, metrics_split: str = "validation") -> ModelCard:
    """The model card of a saved model; `datasets` are names (see `dataset_name`), `metrics` the saved
    epoch's numbers measured on `metrics_split` of the first dataset."""
    license_id = license_of(card)
    base = base_model or base_model_of(card)
    name = repo_id.rpartition("/")[2] if repo_id else card.name
    numbers = _numbers(metrics or {})
    results = [EvalResult(task_type=card.task, dataset_type=datasets[0], dataset_name=datasets[0],
                          dataset_split=metrics_split, metric_type=metric, metric_value=value)
               for metric, value in numbers.items()] if datasets else []
    tags = ["zoo", card.modality, *([card.family] if card.family else [])]
    data = ModelCardData(library_name="zoo", pipeline_tag=card.task, tags=tags, license=license_id,
                         base_model=base, datasets=list(datasets) or None, metrics=list(numbers) or None,
                         model_name=name if results else None, eval_results=results or None)
    body = _body(card, labels, name=name, repo_id=repo_id, base_model=base, license_id=license_id,
                 datasets=datasets, metrics=numbers, metrics_split=metrics_split)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers among `metrics` (a count, a matrix or NaN has no place in model-index)."""
    return {str(key): float(value) for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}


def _body(card: ZooCard, labels: Sequence[str] | None, *, name: str, repo_id: str | None, base_model: str | None,
          license_id: str | None, datasets: Sequence[str], metrics: Mapping[str, float], metrics_split: str) -> str:
    where = f"hf-hub:{repo_id}" if repo_id else "local-dir:PATH/TO/THIS/DIRECTORY"
    lines = [f"# {name}", "", card.description or f"A {card.task} model ({card.modality}).", "",
             "## Use", "", "```python", "import zoo", "", f'model = zoo.create("{where}")', "```", "",
             "## Details", "",
             f"- architecture: `{card.recipe.model if card.recipe else card.name}` (builder `{card.builder}`)",
             f"- task: {card.task}; outputs: {card.num_classes if card.num_classes is not None else 'features'}"]
    lines += _provenance(card, base_model)
    if datasets:
        lines.append(f"- trained on: {', '.join(datasets)}")
    if labels:
        shown = ", ".join(labels[:_LABELS_SHOWN])
        more = f" (+{len(labels) - _LABELS_SHOWN} more)" if len(labels) > _LABELS_SHOWN else ""
        lines.append(f"- labels: {shown}{more}")
    if metrics:
        lines += ["", "## Results", "", f"Measured on the {metrics_split} data"
                  + (f" of {datasets[0]}" if datasets else "") + " at the saved epoch:", "",
                  "| metric | value |", "|---|---|", *(f"| {key} | {value:.4f} |" for key, value in metrics.items())]
    if license_id:
        lines += ["", "## Licence", "", f"`{license_id}`, inherited from the starting weights."]
        if is_non_commercial(license_id):
            lines += ["", f"> **Non-commercial use only:** {non_commercial_warning(license_id)}."]
    return "\n".join(lines) + "\n"


def _provenance(card: ZooCard, base_model: str | None) -> list[str]:
    """Where the weights started: the Hub repo, and the card's weights tag and source (a local path is not shown)."""
    tag = card.default_weights
    weights = card.weights.get(tag) if tag else None
    lines = [f"- base model: [{base_model}](https://huggingface.co/{base_model})"] if base_model else []
    if tag:
        source = weights.source if weights is not None else ""
        shown = f" ({source})" if source.startswith((HUB_PREFIX, "https://", "http://")) else ""
        lines.append(f"- started from weights `{tag}`{shown}")
    if weights is not None and weights.metrics:
        lines.append("- metrics of the starting weights: " + ", ".join(f"{k}={v}" for k, v in weights.metrics.items()))
    return lines
