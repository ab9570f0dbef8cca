"""A local Hugging Face cache for tests: zoo and huggingface_hub (which timm and transformers use) pointed at an
empty offline cache, and folders or tensors served from it as Hub repos."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from weights_models import fill_hf_cache

__all__ = ["fill_hf_cache", "safetensors_bytes", "serve_folder", "use_hub_cache"]


def use_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point zoo and huggingface_hub at an empty cache under `tmp_path`, offline; returns the cache."""
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hub"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    return cache


def serve_folder(directory: Path, cache: Path, repo_id: str) -> None:
    """Every file of `directory` in the local Hub cache as `repo_id`."""
    files = {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    fill_hf_cache(cache, repo_id, files)


def safetensors_bytes(state: dict[str, torch.Tensor]) -> bytes:
    """`state` as the bytes of a safetensors file."""
    from safetensors.torch import save

    return save(state)
