"""The fine-tune API: heads, freezing, parameter groups, strategies, feature cache, LoRA.

Everything is driven by the model's card (``model.zoo_card``: ``head``, ``layer_groups``,
``extra``), so it works the same for every family, built-in or from a third-party plugin.
"""
from __future__ import annotations

from typing import Any

from .freezing import BN_POLICIES, freeze, unfreeze
from .groups import layer_groups, param_groups
from .heads import get_head, reset_head

__all__ = [
    "BN_POLICIES", "Callback", "CheckpointError", "FitResult", "NonFiniteError", "OutputError", "apply_lora", "cached_features", "evaluate", "fit", "freeze",
    "get_head", "get_strategy", "layer_groups",
    "merge_lora", "merged_state_dict", "param_groups", "reset_head", "Strategy", "Trainer", "unfreeze",
]

_LAZY = {
    "get_strategy": ".strategies", "Strategy": ".strategies",
    "cached_features": ".feature_cache",
    "apply_lora": ".lora", "merge_lora": ".lora", "merged_state_dict": ".lora",
    "CheckpointError": ".checkpoint", "NonFiniteError": ".checkpoint", "OutputError": ".run_dir",
    "fit": ".trainer", "Trainer": ".trainer", "Callback": ".trainer", "FitResult": ".trainer", "evaluate": ".trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'zoo.finetune' has no attribute {name!r}")
