"""What a model's forward returned, read the same way by the plugin check, export parity and benchmarks."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def leading_tensor(output: Any) -> torch.Tensor | None:
    """The tensor an output leads with: itself, ``logits`` / ``last_hidden_state``, or a sequence's first;
    None when it holds none."""
    if isinstance(output, torch.Tensor):
        return output
    for key in ("logits", "last_hidden_state"):
        value = output.get(key) if isinstance(output, Mapping) else getattr(output, key, None)
        if isinstance(value, torch.Tensor):
            return value
    if isinstance(output, (tuple, list)) and output:
        return leading_tensor(output[0])
    return None
