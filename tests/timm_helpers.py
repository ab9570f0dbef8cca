"""timm test models with random weights, served from a local Hugging Face cache as timm/<arch>.<tag>."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hub_cache_helpers import fill_hf_cache, safetensors_bytes, use_hub_cache

__all__ = ["image_batch", "random_timm_state", "safetensors_bytes", "serve_weights", "timm", "use_hub_cache"]

timm = pytest.importorskip("timm")


def random_timm_state(arch: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of `arch` with random parameters and non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = timm.create_model(arch, pretrained=False)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            if name.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
            else:
                tensor.normal_(0.0, 0.2)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


def serve_weights(cache: Path, arch: str, tag: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of `arch` in the cache as the Hub repo timm/<arch>.<tag>; returns them."""
    state = random_timm_state(arch, seed)
    fill_hf_cache(cache, f"timm/{arch}.{tag}", {"model.safetensors": safetensors_bytes(state)})
    return state


def image_batch(size: int = 160, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(3))

