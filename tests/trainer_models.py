"""Small models and data made on the spot, shared by the trainer and data tests (no plugin needed)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

import zoo


class SmallConvNet(nn.Module):
    """Conv + BatchNorm stages, pooled features, a Linear head at ``head``."""

    def __init__(self, width: int = 8, num_classes: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.stage = nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False),
                                   nn.BatchNorm2d(2 * width), nn.ReLU())
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.head(self.pool(self.stage(self.stem(x))))


class SmallAudioNet(nn.Module):
    """Waveform -> log energy in frames -> Linear head; takes (waveforms, lengths) like zoo's audio models."""

    def __init__(self, frames: int = 8, num_classes: int = 2):
        super().__init__()
        self.frames = frames
        self.features = nn.Linear(frames, 16)
        self.head = nn.Linear(16, num_classes)

    def forward(self, waveforms, lengths=None):
        chunks = waveforms.reshape(waveforms.shape[0], self.frames, -1)
        return self.head(torch.relu(self.features(chunks.pow(2).mean(-1).add(1e-6).log())))


class SmallTextNet(nn.Module):
    """Embedding bag over token ids, then a Linear head; takes tokenizer outputs as keywords."""

    def __init__(self, vocab_size: int = 200, num_classes: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 16, padding_idx=0)
        self.head = nn.Linear(16, num_classes)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        mask = attention_mask.unsqueeze(-1).float() if attention_mask is not None else 1.0
        pooled = (self.embed(input_ids) * mask).sum(1) / (mask.sum(1) if attention_mask is not None else 1)
        return self.head(pooled)


CONV_CARD = zoo.ModelCard(
    name="trainer_conv", builder="trainer_models:SmallConvNet", task="image-classification", modality="image",
    defaults={"width": 8, "num_classes": 3}, input=zoo.ImageInput(size=16, resize_size=18), head="head",
    layer_groups=["stem", "stage", "head"], num_features=16,
)
AUDIO_CARD = zoo.ModelCard(
    name="trainer_audio", builder="trainer_models:SmallAudioNet", task="audio-classification", modality="audio",
    defaults={"frames": 8, "num_classes": 2}, input=zoo.AudioInput(sample_rate=8000, clip_seconds=1.0),
    head="head", layer_groups=["features", "head"], num_features=16,
)
TEXT_CARD = zoo.ModelCard(
    name="trainer_text", builder="trainer_models:SmallTextNet", task="text-classification", modality="text",
    defaults={"vocab_size": 200, "num_classes": 2}, input=zoo.TextInput(max_length=32), head="head",
    layer_groups=["embed", "head"], num_features=16,
)


def register_cards() -> None:
    registry = zoo.default_registry()
    for card in (CONV_CARD, AUDIO_CARD, TEXT_CARD):
        registry.register(card)


def write_image_folder(root: Path, *, classes: int = 3, per_class: int = 8, size: int = 20, seed: int = 0) -> Path:
    """Class k: an image dominated by colour channel k, plus noise; saved as PNG files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for k in range(classes):
        folder = root / f"class_{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 80, (size, size, 3))
            pixels[..., k % 3] += 150
            Image.fromarray(pixels.astype("uint8")).save(folder / f"{i}.png")
    return root


def write_audio_folder(root: Path, *, rate: int = 16000, per_class: int = 6, seed: int = 0) -> Path:
    """Two classes of one-second clips: loud at the start ("early") or at the end ("late")."""
    import soundfile

    rng = np.random.default_rng(seed)
    for name, loud in (("early", slice(0, rate // 4)), ("late", slice(3 * rate // 4, rate))):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            clip = rng.normal(0, 0.01, rate)
            clip[loud] += rng.normal(0, 0.5, loud.stop - loud.start)
            soundfile.write(folder / f"{i}.flac", clip.astype("float32"), rate)
    return root


def linear_regression_data(n: int = 128, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=generator)
    return x, x @ torch.tensor([[2.0], [-1.0], [0.5]]) + 0.25


def ddp_train(out: str, batch_size: int) -> None:
    """Train a small classifier with fit and save its weights and metrics per process (see test_trainer_ddp)."""
    import json
    import os

    from zoo.finetune import fit

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 6, generator=generator)
    y = (x[:, 0] - x[:, 1] > 0).long()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    result = fit(model, (x, y), (x, y), epochs=2, batch_size=batch_size, lr=0.05, seed=3, progress=False,
                 verbose=False, checkpoint_dir=os.path.join(out, "run"))
    rank = int(os.environ.get("RANK", 0))
    torch.save(model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world": int(os.environ.get("WORLD_SIZE", 1)), "val_samples": result.history[-1]["val_samples"],
                   "train_samples": result.history[-1]["train_samples"]}, f)


if __name__ == "__main__":  # python trainer_models.py ddp OUT BATCH_SIZE (started by torchrun in the tests)
    import sys

    if sys.argv[1] == "ddp":
        ddp_train(sys.argv[2], int(sys.argv[3]))


@contextlib.contextmanager
def trainer_cards_on_one_thread():
    """These tests' cards registered, and torch on one thread (steady timings on a busy machine)."""
    register_cards()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
