"""The transformers family in tests: its plugin discoverable, and tiny random checkpoints written by
transformers itself into a folder or a local Hugging Face cache (offline)."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO
from weights_models import fill_hf_cache

transformers = pytest.importorskip("transformers")

PLUGINS = REPO / "plugins"


def family_installed() -> bool:
    return any(ep.name == "transformers" for ep in importlib.metadata.entry_points(group="zoo.plugins"))


@pytest.fixture(name="family")
def family_fixture(site, monkeypatch):
    """The transformers family plugin discoverable in this process (installed, or as a test distribution)."""
    import zoo
    from zoo.registry import reset_default_registry

    monkeypatch.syspath_prepend(str(PLUGINS))
    if not family_installed():
        site("zoo-transformers-test", {"transformers": "zoo_transformers.plugin:register"}, {})
    reset_default_registry()
    return zoo


def save(model: Any, directory: Path, **extra_files: str) -> Path:
    """`model` saved by transformers' own save_pretrained (safetensors), plus extra JSON/text files."""
    model.save_pretrained(directory)
    for name, text in extra_files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


def serve(directory: Path, cache: Path, repo_id: str) -> None:
    """Every file of `directory` in the local Hub cache as `repo_id`."""
    files = {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()}
    fill_hf_cache(cache, repo_id, files)


def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hub"
    cache.mkdir(exist_ok=True)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    return cache


def random_model(auto: str, config: Any, seed: int = 0) -> Any:
    """A transformers model of `config` with every float tensor random (no all-zero biases or unit norms)."""
    torch.manual_seed(seed)
    model = getattr(transformers, auto).from_config(config)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point() and "position_ids" not in name:
                tensor.normal_(0.0, 0.1)
    return model.eval()


def text_batch(vocab: int = 99, seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab, (2, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    ids[1, 6:] = 0
    return {"input_ids": ids, "attention_mask": mask}
