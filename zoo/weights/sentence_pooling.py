"""sentence-transformers folders: ``modules.json``, ``1_Pooling/config.json``, ``Normalize`` and ``max_seq_length``.

A sentence-transformers repo is a transformers checkpoint plus a pipeline of modules after it. zoo
reproduces the pipelines made of the encoder, one pooling mode (``cls``, ``mean``, ``max``,
``lasttoken``) and an optional L2 normalisation; any other module (``Dense``, ``LayerNorm``, a
router, ...), or pooling that concatenates modes or weights tokens, is refused with the reason, never
approximated. Only JSON is read.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WeightsError

MODULES_NAME = "modules.json"
SENTENCE_CONFIG_NAME = "sentence_bert_config.json"
TOKENIZER_CONFIG_NAME = "tokenizer_config.json"
UNLIMITED_LENGTH = 10**9  # tokenizer configs write 10**30 for "no limit": a length at or above it is none
POOLINGS = ("cls", "mean", "max", "lasttoken")
# The pooling config's older spelling: one boolean per mode.
_LEGACY_MODES = {
    "pooling_mode_cls_token": "cls", "pooling_mode_mean_tokens": "mean", "pooling_mode_max_tokens": "max",
    "pooling_mode_lasttoken": "lasttoken", "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
}
_SIZE_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class SentencePooling:
    """How a sentence-transformers repo turns token states into one embedding."""

    pooling: str
    """One of `POOLINGS`."""
    normalize: bool
    """Whether embeddings are scaled to unit L2 norm (a ``Normalize`` module)."""
    max_seq_length: int | None
    """Most tokens the repo encodes (``sentence_bert_config.json``), or None when it does not say."""
    include_prompt: bool = True
    """Whether prompt tokens are pooled; zoo prepends no prompts, so both settings give the same embeddings."""


def sentence_pooling(directory: Path) -> SentencePooling | None:
    """The pooling of the sentence-transformers repo in `directory`, None for a plain checkpoint.

    Raises `WeightsError` for a pipeline zoo cannot reproduce exactly.
    """
    modules = read_folder_json(directory, MODULES_NAME)
    if modules is None:
        return None
    if not isinstance(modules, list) or not all(isinstance(m, dict) for m in modules):
        raise WeightsError(f"{directory / MODULES_NAME} must be a list of modules")
    pooling: str | None = None
    include_prompt = True
    normalize = False
    for module in sorted(modules, key=lambda m: int(m.get("idx", 0))):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = str(module.get("path", ""))
        if kind == "Transformer" and path in ("", "."):
            continue
        if kind == "Pooling" and pooling is None and not normalize:
            pooling, include_prompt = _pooling(directory, path)
            continue
        if kind == "Normalize" and pooling is not None and not normalize:
            normalize = True
            continue
        raise WeightsError(
            f"{directory / MODULES_NAME}: zoo cannot reproduce the sentence-transformers module "
            f"{module.get('type')!r} at {path or 'the repo root'!r}; it reproduces a pipeline of the encoder (at the "
            "root), one Pooling module and an optional Normalize. Use sentence-transformers for this model")
    if pooling is None:
        raise WeightsError(f"{directory / MODULES_NAME} names no Pooling module, so the embedding is not defined; "
                           "zoo reproduces the encoder, one Pooling module and an optional Normalize")
    return SentencePooling(pooling=pooling, normalize=normalize, max_seq_length=_max_seq_length(directory),
                           include_prompt=include_prompt)


def _pooling(directory: Path, path: str) -> tuple[str, bool]:
    where = f"{path}/config.json"
    config = read_folder_json(directory, where)
    if not isinstance(config, dict):
        raise WeightsError(f"{directory / where} is missing or not a JSON object: the pooling is unknown")
    modes = config.get("pooling_mode")
    if modes is None:
        modes = [mode for key, mode in _LEGACY_MODES.items() if config.get(key)]
    elif isinstance(modes, str):
        modes = [modes]
    if not isinstance(modes, list) or len(modes) != 1 or modes[0] not in POOLINGS:
        raise WeightsError(f"{directory / where}: pooling {modes!r} cannot be reproduced exactly; zoo pools with "
                           f"exactly one of {', '.join(POOLINGS)}")
    include_prompt = config.get("include_prompt", True)
    return str(modes[0]), bool(include_prompt)


def _max_seq_length(directory: Path) -> int | None:
    """``max_seq_length`` of sentence_bert_config.json, else the tokenizer's ``model_max_length`` (where
    sentence-transformers 5 and later keep it)."""
    for name, key in ((SENTENCE_CONFIG_NAME, "max_seq_length"), (TOKENIZER_CONFIG_NAME, "model_max_length")):
        config = read_folder_json(directory, name)
        value = config.get(key) if isinstance(config, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < UNLIMITED_LENGTH:
            return value
    return None


def read_folder_json(directory: Path, name: str, *, limit: int = _SIZE_LIMIT) -> Any:
    """The JSON in `directory`/`name` (a regular file inside the folder, at most `limit` bytes), or None if there
    is none; `WeightsError` when it leads out of the folder or cannot be read."""
    path = directory / name
    try:
        if not path.is_file() or path.stat().st_size > limit:
            return None
        if directory.resolve() not in path.resolve().parents and not _hub_blob(directory, path):
            raise WeightsError(f"{path} leads out of the model folder; zoo reads only the folder's own files")
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsError(f"cannot read {path}: {exc}") from None


def _hub_blob(directory: Path, path: Path) -> bool:
    """A Hub cache snapshot links its files to ``../../blobs``: those links stay inside the repo's cache."""
    repo = directory.resolve().parent.parent
    return repo.name.startswith("models--") and (repo / "blobs") in path.resolve().parents
