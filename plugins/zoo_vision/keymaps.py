"""State-dict key maps for torchvision checkpoints (plain dict work: no torch import)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AUX_PREFIXES = ("AuxLogits.", "aux1.", "aux2.")


def drop_aux_heads(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Drop the auxiliary classifiers of GoogLeNet and Inception v3 from a checkpoint.

    zoo builds these models with ``aux_logits=False`` so that `forward` returns plain
    logits in training too; their torchvision checkpoints still carry the auxiliary
    heads, which are used only as a training loss and are not needed for inference
    or fine-tuning.
    """
    return {k: v for k, v in state_dict.items() if not k.startswith(AUX_PREFIXES)}
