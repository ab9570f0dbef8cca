"""The fine-tune API: heads, freezing, parameter groups, strategies, feature cache, LoRA, the trainer.

Everything is driven by the model's card (``zoo.card_of(model)``: ``head``, ``layer_groups``,
``extra``), so it works the same for every family, built-in or from a third-party plugin.

Names are imported on first use: ``zoo.finetune.options`` (the named choices) stays free of torch,
so the command line can offer them without importing it.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "BN_POLICIES", "BestModel", "Callback", "CheckpointError", "FitResult", "NonFiniteError", "OutputError", "Strategy",
    "Trainer", "TrainerConfig", "apply_lora", "cached_features", "cached_layer_features", "evaluate", "fit", "freeze",
    "get_head", "get_strategy", "layer_groups", "merge_lora", "merged_state_dict", "param_groups", "reset_head",
    "unfreeze",
]

_LAZY = {
    "BN_POLICIES": ".options",
    "freeze": ".freezing", "unfreeze": ".freezing",
    "layer_groups": ".groups", "param_groups": ".groups",
    "get_head": ".heads", "reset_head": ".heads",
    "get_strategy": ".strategies", "Strategy": ".strategies",
    "cached_features": ".feature_cache",
    "cached_layer_features": ".feature_cache",
    "apply_lora": ".lora", "merge_lora": ".lora", "merged_state_dict": ".lora",
    "CheckpointError": ".checkpoint", "NonFiniteError": ".checkpoint", "OutputError": ".run_dir",
    "Callback": ".callbacks", "BestModel": ".callbacks", "TrainerConfig": ".config",
    "fit": ".trainer", "Trainer": ".trainer", "FitResult": ".trainer", "evaluate": ".trainer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'zoo.finetune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
