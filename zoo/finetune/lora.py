"""LoRA: low-rank adapters on chosen Linear layers, merged back into plain Linear layers to save.

Targets are shell wildcards over module names (``"encoder.*.attention.*.query"``); a
pattern naming a container adapts every Linear inside it. Without targets, the card's
``extra["lora_targets"]`` is used, so each family says where adapters go. The head, and the
modules built fresh beside it (``extra["head_companions"]``), are never adapted: they are
trained whole and always saved.

An adapted layer computes ``W x + b + (alpha / rank) * B A x`` with ``B`` starting at zero,
so a freshly adapted model gives exactly the outputs it gave before.
"""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from ..cards import card_of
from ..errors import InvalidArgumentError, ZooError
from ..head_companions import head_parts, within
from ._checks import whole_number
from ._select import examples, matches
from .freezing import freeze


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` (``base``) plus a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0, dropout: float = 0.0) -> None:
        super().__init__()
        whole_number("rank", rank, 1)
        self.base = base
        self.rank = rank
        self.scaling = alpha / rank
        device, dtype = base.weight.device, base.weight.dtype
        self.lora_a = nn.Parameter(torch.empty(rank, base.in_features, device=device, dtype=dtype))
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=device, dtype=dtype))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def weight(self) -> torch.Tensor:
        """The adapted weight ``W + (alpha / rank) * B A``, differentiable in the adapters.

        Modules that read their Linear's ``weight`` instead of calling it (``nn.MultiheadAttention``
        with its ``out_proj``, functional attention with a ``qkv`` layer) so train the adapters too.
        """
        return self.base.weight + self.scaling * (self.lora_b @ self.lora_a)

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update: torch.Tensor = self.dropout(x) @ self.lora_a.transpose(0, 1) @ self.lora_b.transpose(0, 1)
        plain: torch.Tensor = self.base(x)
        return plain + update * self.scaling

    def merged(self) -> nn.Linear:
        """A plain Linear computing the same function (in eval mode)."""
        base = self.base
        layer = nn.Linear(base.in_features, base.out_features, bias=base.bias is not None,
                          device=base.weight.device, dtype=base.weight.dtype)
        with torch.no_grad():
            layer.weight.copy_(self.weight)
            if base.bias is not None:
                layer.bias.copy_(base.bias)
        layer.weight.requires_grad_(base.weight.requires_grad)
        if layer.bias is not None:
            layer.bias.requires_grad_(base.bias.requires_grad)
        return layer

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scaling={self.scaling:g}"


def apply_lora(
    model: nn.Module,
    targets: Iterable[str] | None = None,
    *,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
) -> list[str]:
    """Wrap the Linear layers `targets` names in `LoRALinear`; freeze everything but adapters and head (with
    its companions).

    Returns the adapted module names. A target pattern that matches no Linear layer is an error.
    """
    card = card_of(model)
    patterns = list(targets) if targets is not None else list(card.extra.get("lora_targets") or [])
    if isinstance(targets, str):
        patterns = [targets]
    if not patterns:
        raise ZooError(f"model {card.name!r} names no LoRA targets: pass targets=['pattern', ...] (module-name "
                       "wildcards over its Linear layers) or set extra['lora_targets'] in its card")
    trained = head_parts(card)
    inside_adapter = {f"{n}.base" for n, m in model.named_modules() if isinstance(m, LoRALinear)}
    linears = [(n, m) for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and n not in inside_adapter and not within(n, trained)]
    chosen = []
    for pattern in patterns:
        hits = [n for n, _ in linears if matches(n, pattern)]
        if not hits:
            raise InvalidArgumentError(f"LoRA target {pattern!r} matches no Linear layer of model {card.name!r}; "
                                       f"its Linear layers include {examples(n for n, _ in linears)}")
        chosen += [n for n in hits if n not in chosen]
    layers = dict(linears)
    for name in chosen:
        model.set_submodule(name, LoRALinear(layers[name], rank=rank, alpha=alpha, dropout=dropout))
    if card.head:
        freeze(model, "backbone")
    else:
        for param in model.parameters():
            param.requires_grad_(False)
    for param in lora_parameters(model):
        param.requires_grad_(True)
    return chosen


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in model.modules() if isinstance(m, LoRALinear) for p in (m.lora_a, m.lora_b)]


def has_lora(model: nn.Module) -> bool:
    return any(isinstance(m, LoRALinear) for m in model.modules())


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its Linear layer, in place; the state dict gets the original names back.

    Call it before saving a LoRA-tuned model (the saved file then loads into the plain
    architecture). Returns `model`; a model without adapters is returned unchanged.
    """
    adapted = [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    for name, adapter in adapted:
        model.set_submodule(name, adapter.merged())
    return model


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict `merge_lora` would give, without changing `model` (for saving mid-training).

    Adapted layers appear under their original names (``q.weight``, ``q.bias``) with the
    adapters folded in; a model without adapters gives its plain ``state_dict()``.
    """
    adapters = {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}
    if not adapters:
        return model.state_dict()
    state = {}
    for key, value in model.state_dict().items():
        owner = next((n for n in adapters if key.startswith(n + ".")), None)
        if owner is None:
            state[key] = value
        elif key == f"{owner}.base.bias":
            state[f"{owner}.bias"] = value
    with torch.no_grad():
        for name, module in adapters.items():
            state[f"{name}.weight"] = module.weight.detach().clone()
    return state


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only what LoRA training changed: the adapter matrices and the whole head (with its companions)."""
    trained = head_parts(card_of(model))
    return {k: v for k, v in model.state_dict().items()
            if ".lora_a" in k or ".lora_b" in k or k.startswith(("lora_a", "lora_b")) or within(k, trained)}
