"""Small models, cards and weight-file makers shared by the weights tests (no plugin needed)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

import zoo
import zoo.registry


class Net(nn.Module):
    """Conv + BatchNorm stages and a Linear head at "classifier"."""

    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.stage = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.BatchNorm2d(2 * width),
                                   nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.classifier(self.pool(self.stage(self.stem(x))))


def build_net(width: int = 8, num_classes: int = 10) -> Net:
    return Net(width, num_classes)


class MetaHostile(Net):
    """Reads a parameter's value while building: cannot be built on the meta device."""

    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__(width, num_classes)
        self.register_buffer("scale", torch.tensor(float(self.classifier.weight.abs().sum().item() > -1)))


def build_meta_hostile(width: int = 8, num_classes: int = 10) -> MetaHostile:
    return MetaHostile(width, num_classes)


class TiedLM(nn.Module):
    """Embedding tied to the output layer, plus a non-persistent buffer (as in text encoders)."""

    def __init__(self, vocab: int = 20, dim: int = 8, num_classes: int = 3):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.proj = nn.Linear(dim, dim)
        self.decoder = nn.Linear(dim, vocab, bias=False)
        self.decoder.weight = self.embed.weight
        self.register_buffer("positions", torch.arange(6), persistent=False)
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, ids):
        h = torch.tanh(self.proj(self.embed(ids) + self.positions[: ids.shape[1], None].float()))
        return self.classifier(h.mean(1)), self.decoder(h)


def build_tied(vocab: int = 20, dim: int = 8, num_classes: int = 3) -> TiedLM:
    return TiedLM(vocab, dim, num_classes)


# A "transformers" layout for TiedLM: other key names and a config of its own.
def hf_config_to_kwargs(config: dict) -> dict:
    out = {"vocab": config["vocab_size"], "dim": config["hidden_size"]}
    if "num_labels" in config:
        out["num_classes"] = config["num_labels"]
    return out


def hf_key_map(state: dict) -> dict:
    renames = {"model.embeddings.weight": "embed.weight", "model.dense.weight": "proj.weight",
               "model.dense.bias": "proj.bias"}
    return {renames.get(k, k): v for k, v in state.items() if not k.startswith("model.pooler.")}


MODULE = __name__


def net_card(name: str = "tnet", weights: dict | None = None, default: str | None = None, **fields) -> zoo.ModelCard:
    return zoo.ModelCard(
        name=name, builder=f"{MODULE}:build_net", task="image-classification", modality="image", family="test",
        defaults={"width": 8, "num_classes": 10}, head="classifier", layer_groups=["stem", "stage", "classifier"],
        num_features=16, weights=weights or {}, default_weights=default, **fields,
    )


def install(monkeypatch, *cards) -> zoo.Registry:
    """Make a fresh registry holding `cards` the process default."""
    registry = zoo.Registry()
    for card in cards:
        registry.register(card)
    monkeypatch.setattr(zoo.registry, "_default", registry)
    return registry


def isolate_caches(monkeypatch, tmp_path: Path) -> dict[str, Path]:
    """Point every cache (torch hub, Hugging Face, zoo) into tmp_path; offline by default."""
    dirs = {"torch": tmp_path / "torch", "hf": tmp_path / "hf" / "hub", "zoo": tmp_path / "zoo"}
    monkeypatch.setenv("TORCH_HOME", str(dirs["torch"]))
    monkeypatch.setenv("HF_HUB_CACHE", str(dirs["hf"]))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("ZOO_CACHE", str(dirs["zoo"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("ZOO_OFFLINE", raising=False)
    import torch.hub

    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    return dirs


def save_net(path: Path, *, width: int = 8, num_classes: int = 10, seed: int = 0) -> tuple[Net, str]:
    """A randomly initialised Net saved to `path` (safetensors or .pth by suffix); returns (net, sha256)."""
    torch.manual_seed(seed)
    net = Net(width, num_classes).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a wrong load shows
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(net.state_dict(), str(path))
    else:
        torch.save(net.state_dict(), path)
    return net, sha256(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def fill_hf_cache(cache: Path, repo_id: str, files: dict[str, bytes], revision: str = "main",
                  commit: str = "0123456789abcdef0123456789abcdef01234567") -> Path:
    """Write huggingface_hub's cache layout (blobs, snapshot links, refs) for a model repo; returns the snapshot."""
    repo_dir = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo_dir / "snapshots" / commit
    (repo_dir / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        link = snapshot / name
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(os.path.relpath(blob, link.parent), link)
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / revision).write_text(commit)
    return snapshot


class CopyingLinear(nn.Linear):
    """Loads by copying into its own tensors (ignores assignment), as some custom modules do."""

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing, unexpected, errors):
        with torch.no_grad():
            self.weight.copy_(state_dict[prefix + "weight"])
            self.bias.copy_(state_dict[prefix + "bias"])


class CopyingNet(Net):
    def __init__(self, width: int = 8, num_classes: int = 10):
        super().__init__(width, num_classes)
        self.classifier = CopyingLinear(2 * width, num_classes)


def build_copying(width: int = 8, num_classes: int = 10) -> CopyingNet:
    return CopyingNet(width, num_classes)
