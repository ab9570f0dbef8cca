"""Checkpoint keys -> the keys of the model a card builds, as transformers itself maps them (torch imported
lazily, when a checkpoint is loaded).

A checkpoint may differ from the model in three ways, all of which transformers' ``from_pretrained``
accepts: key names transformers renamed since the file was written (its own conversion mapping, e.g.
``encoder.layer.N.attention.attention.query`` -> ``layers.N.attention.q_proj``); the encoder stored bare
(``embeddings.*``, as ``AutoModel`` saves it) or under the task model's ``base_model_prefix``
(``bert.embeddings.*``); and parts the task does not use (a masked-LM head, another task's classifier, an
optional pooler). The map renames as transformers does and keeps the tensors the model has; a tensor the
model needs and the file lacks is still reported by zoo's strict loading (only the head may be missing).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FIT_LAYOUT = f"{__name__}:fit_layout"


def fit_layout(state: Mapping[str, Any], *, task: str, config: Mapping[str, Any]) -> dict[str, Any]:
    """`state` with the names the model of `task` built from `config` uses (the card's ``hf_key_map``, with
    ``hf_key_map_args`` ``{"task": ..., "config": ...}``)."""
    import torch

    from .build import build_model

    with torch.device("meta"):
        model = build_model(task=task, config=config)
    return fit_to_model(state, model.transformers_model, set(model.state_dict()))


def fit_to_model(state: Mapping[str, Any], inner: Any, expected: set[str]) -> dict[str, Any]:
    if expected.issubset(state):
        return {key: state[key] for key in expected}  # every name already the model's: nothing to rename
    rename = _renamer(inner, expected)
    out: dict[str, Any] = {}
    for key, value in state.items():
        new = rename(key)
        if new in expected:
            out[new] = value
    return out


def _renamer(inner: Any, expected: set[str]) -> Any:
    """transformers' own key renaming for this model (its conversion mapping and base-model prefix)."""
    prefix = getattr(inner, "base_model_prefix", "") or ""
    meta = dict.fromkeys(expected, True)
    try:
        from transformers.conversion_mapping import get_model_conversion_mapping
        from transformers.core_model_loading import WeightConverter, WeightRenaming, rename_source_key
    except ImportError:  # a transformers without conversion mappings: only the prefix differs
        return lambda key: _prefixed(key, prefix, expected)
    transforms = get_model_conversion_mapping(inner)
    renamings = [t for t in transforms if isinstance(t, WeightRenaming)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]

    def rename(key: str) -> str:
        new, _ = rename_source_key(key, renamings, converters, base_model_prefix=prefix or None, meta_state_dict=meta)
        return str(new)

    return rename


def _prefixed(key: str, prefix: str, expected: set[str]) -> str:
    if key in expected or not prefix:
        return key
    lead = prefix + "."
    if key.startswith(lead) and key[len(lead):] in expected:
        return key[len(lead):]
    return lead + key if lead + key in expected else key


def __getattr__(name: str) -> Any:
    """``catalogue__<card>``: the key map a curated card's weights name (the repo's config read from the Hub
    cache, then `fit_layout`)."""
    if name.startswith("catalogue__"):
        from .catalog import entry_for

        entry = entry_for(name)
        if entry is not None:
            defaults = entry["defaults"]

            def key_map(state: Mapping[str, Any]) -> dict[str, Any]:
                from .build import hub_config

                return fit_layout(state, task=defaults["task"], config=hub_config(defaults["repo"]))

            return key_map
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
