"""timm test models with random weights, served from a local Hugging Face cache as timm/<arch>.<tag>."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from weights_models import fill_hf_cache

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


def safetensors_bytes(state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    return save(state)


def use_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point zoo and huggingface_hub (which timm uses) at an empty cache under `tmp_path`, offline."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hub"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    return cache


def serve_weights(cache: Path, arch: str, tag: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of `arch` in the cache as the Hub repo timm/<arch>.<tag>; returns them."""
    state = random_timm_state(arch, seed)
    fill_hf_cache(cache, f"timm/{arch}.{tag}", {"model.safetensors": safetensors_bytes(state)})
    return state


def image_batch(size: int = 160, n: int = 2) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(3))

