"""The transformers family in tests: its plugin discoverable, and tiny random checkpoints written by
transformers itself into a folder or a local Hugging Face cache (offline)."""
from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import REPO
from hub_cache_helpers import serve_folder, use_hub_cache

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


serve = serve_folder  # every file of a folder in the local Hub cache as a repo
hub_cache = use_hub_cache  # zoo and huggingface_hub pointed at an empty offline cache


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


NARROW_TEXT = {"hidden_size": 32, "num_attention_heads": 4, "intermediate_size": 37}
NARROW_AUDIO = {**NARROW_TEXT, "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2}
AUTO_FOR_TASK = {"text-classification": "AutoModelForSequenceClassification",
                 "token-classification": "AutoModelForTokenClassification",
                 "image-classification": "AutoModelForImageClassification",
                 "audio-classification": "AutoModelForAudioClassification",
                 "automatic-speech-recognition": "AutoModelForCTC", "feature-extraction": "AutoModel"}


def narrow_config(entry: Any) -> Any:
    """The config of a curated entry at its published depth, but narrow (fast to build and run)."""
    values = dict(entry.config)
    if entry.model_type == "convnext":
        values.update(hidden_sizes=[8, 8, 8, 8])
    elif entry.model_type in ("wav2vec2", "hubert"):
        values.update(NARROW_AUDIO)
    elif entry.model_type == "modernbert":
        values.update(NARROW_TEXT, intermediate_size=40)
    else:
        values.update(NARROW_TEXT)
        if "embedding_size" in values:
            values["embedding_size"] = 32
    if "vocab_size" in values and entry.task != "automatic-speech-recognition":
        values["vocab_size"] = 99
    if entry.model_type == "audio-spectrogram-transformer":
        values.update(num_mel_bins=16, max_length=48, frequency_stride=8, time_stride=8)
    return transformers.AutoConfig.for_model(entry.model_type, **values)


def serve_entry(entry: Any, cache: Path, tmp_path: Path) -> tuple[Any, Any]:
    """Random weights of a curated entry's shape in the local Hub cache as its repo (in the file name the
    card expects); returns (transformers' model, its feature extractor or None)."""
    from safetensors.torch import load_file

    config = narrow_config(entry)
    theirs = random_model(AUTO_FOR_TASK[entry.task], config)
    directory = tmp_path / entry.name
    theirs.save_pretrained(directory)
    extractor = None
    if entry.model_type == "audio-spectrogram-transformer":
        extractor = transformers.ASTFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
    elif entry.model_type in ("wav2vec2", "hubert"):
        extractor = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True)
    if extractor is not None:
        extractor.save_pretrained(directory)
    if entry.filename == "pytorch_model.bin":
        torch.save(load_file(str(directory / "model.safetensors")), directory / "pytorch_model.bin")
        (directory / "model.safetensors").unlink()
    serve(directory, cache, entry.repo)
    return theirs, extractor


def reference_output(theirs: Any, entry: Any, extractor: Any, inputs: Any) -> torch.Tensor:
    """transformers' own output for the inputs zoo's model takes (features pooled as the card says)."""
    if entry.task.startswith(("audio", "automatic")) or entry.model_type in ("wav2vec2", "hubert"):
        waves = inputs[0]
        features = extractor([w.numpy() for w in waves], sampling_rate=16000, return_tensors="pt")
        kwargs = {k: v for k, v in features.items() if k in ("input_values", "attention_mask")}
    elif entry.task.startswith("image") or isinstance(inputs, tuple):
        kwargs = {"pixel_values": inputs[0]}
    else:
        kwargs = dict(inputs)
    out = theirs(**kwargs)
    if entry.task != "feature-extraction":
        return out.logits
    hidden = out.last_hidden_state
    pooling = entry.options.get("pooling", "mean")
    if isinstance(inputs, dict):
        if pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = inputs["attention_mask"][..., None].float()
            pooled = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1) if entry.options.get("normalize") else pooled
    if entry.model_type in ("wav2vec2", "hubert"):
        return hidden.mean(dim=1)
    return out.pooler_output if entry.model_type == "convnext" else hidden[:, 0]  # a ViT's class token


def entry_inputs(entry: Any) -> Any:
    g = torch.Generator().manual_seed(4)
    if entry.model_type in ("wav2vec2", "hubert", "audio-spectrogram-transformer"):
        return (torch.randn(2, 1600, generator=g),)
    if entry.task.startswith("image") or entry.model_type in ("vit", "dinov2", "beit", "convnext"):
        return (torch.randn(2, 3, 224, 224, generator=g),)
    return text_batch()
