"""Token pooling as sentence-transformers does it: first token, masked mean, masked max, last real token."""
from __future__ import annotations

import torch

POOLINGS = ("cls", "mean", "max", "lasttoken")


def pool_tokens(hidden: torch.Tensor, mask: torch.Tensor | None, mode: str) -> torch.Tensor:
    """``[B, T, D]`` hidden states -> ``[B, D]`` over the tokens `mask` marks real (all when None)."""
    if mode == "cls":
        return hidden[:, 0]
    if mask is None:
        mask = torch.ones(hidden.shape[:2], dtype=torch.bool, device=hidden.device)
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    if mode == "mean":
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    if mode == "max":
        return hidden.masked_fill(weights == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
    if mode == "lasttoken":
        # The last real token of each row, whether padding is on the right or on the left.
        positions = torch.arange(hidden.shape[1], device=hidden.device)[None, :]
        last = torch.where(mask.bool(), positions, torch.full_like(positions, -1)).amax(dim=1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"pooling must be one of {POOLINGS}, got {mode!r}")
