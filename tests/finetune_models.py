"""Small models with zoo cards, shared by the fine-tune tests (no plugin needed)."""
from __future__ import annotations

import torch
from torch import nn

import zoo
from zoo.factory import attach_card


class TinyConvNet(nn.Module):
    """A conv net with BatchNorm in every stage and a Dropout+Linear head."""

    def __init__(self, width: int = 8, num_classes: int = 5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.stages = nn.Sequential(
            nn.Sequential(nn.Conv2d(width, width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(width),
                          nn.ReLU()),
            nn.Sequential(nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(2 * width),
                          nn.ReLU()),
        )
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(0.1), nn.Linear(2 * width, num_classes))

    def forward(self, x):
        return self.head(self.pool(self.stages(self.stem(x))))


class TinyEncoder(nn.Module):
    """A one-block Transformer-like encoder with named q/k/v/out Linear layers."""

    def __init__(self, dim: int = 16, vocab: int = 50, num_classes: int = 2):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.block = nn.ModuleDict({
            "q": nn.Linear(dim, dim), "k": nn.Linear(dim, dim), "v": nn.Linear(dim, dim), "out": nn.Linear(dim, dim),
            "norm": nn.LayerNorm(dim), "mlp": nn.Linear(dim, dim),
        })
        self.classifier = nn.Linear(dim, num_classes)

    def forward(self, ids):
        x = self.embed(ids)
        b = self.block
        att = torch.softmax(b["q"](x) @ b["k"](x).transpose(1, 2) / x.shape[-1] ** 0.5, dim=-1)
        x = b["norm"](x + b["out"](att @ b["v"](x)))
        x = x + torch.relu(b["mlp"](x))
        return self.classifier(x.mean(dim=1))


CONV_CARD = zoo.ModelCard(
    name="tiny_conv", builder="finetune_models:TinyConvNet", task="image-classification", modality="image",
    defaults={"width": 8, "num_classes": 5}, input=zoo.ImageInput(size=16), head="head",
    layer_groups=["stem", "stages.0", "stages.1", "head"], num_features=16,
)
ENCODER_CARD = zoo.ModelCard(
    name="tiny_encoder", builder="finetune_models:TinyEncoder", task="text-classification", modality="text",
    defaults={"dim": 16, "num_classes": 2}, head="classifier", layer_groups=["embed", "block", "classifier"],
    num_features=16, extra={"lora_targets": ["block.q", "block.v"]},
)


def conv_net(seed: int = 0, **kwargs) -> TinyConvNet:
    torch.manual_seed(seed)
    model = TinyConvNet(**kwargs)
    attach_card(model, CONV_CARD)
    return model


def encoder(seed: int = 0) -> TinyEncoder:
    torch.manual_seed(seed)
    model = TinyEncoder()
    attach_card(model, ENCODER_CARD)
    return model
