"""Pretrained weights: sources, cache, verification, fast loading, save and push.

    fetch(card, tag)            download or find a card's weights, checked against its sha256
    is_cached(card, tag)        whether they are on disk already (for offline use)
    pretrained_plan(...)        a registered card's weights, fetched, verified and read, as a build plan
    saved_plan(name, ...)       the same for zoo.create("local-dir:DIR") / zoo.create("hf-hub:org/repo")
    build_and_load(...)         build a module on the meta device and assign a memory-mapped file's tensors
    save_pretrained(model, dir) config.json + model.safetensors + README.md
    push_to_hub(model, repo_id) the same files, uploaded with huggingface_hub

Only the source/cache helpers are imported eagerly; they need neither torch nor huggingface_hub,
so `zoo info` and `zoo list` stay light.
"""
from __future__ import annotations

import importlib
from typing import Any

from ..files import zoo_cache_dir
from .sources import NotCachedError, cached_path, fetch, is_cached, offline

_LAZY = {
    "build_and_load": ".loading",
    "pretrained_plan": ".pretrained",
    "saved_plan": ".saved",
    "save_pretrained": ".saving",
    "push_to_hub": ".saving",
    "read_state_dict": ".formats",
    "write_safetensors": ".formats",
}

__all__ = ["NotCachedError", "build_and_load", "cached_path", "fetch", "is_cached", "offline", "pretrained_plan",
           "push_to_hub", "read_state_dict", "save_pretrained", "saved_plan", "write_safetensors", "zoo_cache_dir"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'zoo.weights' has no attribute {name!r}")
