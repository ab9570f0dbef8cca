"""MixUp and CutMix for image batches, with torchvision's ``transforms.v2``.

Each training batch of images ``(N, C, H, W)`` with class targets ``(N,)`` becomes a batch of
mixed images with soft targets ``(N, classes)``: MixUp blends two images with a weight drawn from
Beta(alpha, alpha), CutMix pastes a box of one into the other, and the targets are mixed in the
same proportion. With both alphas above 0 each batch gets one of them, chosen at random with
equal odds. The draws come from torch's global generator, which checkpoints save and restore,
so a resumed run mixes its batches exactly as an uninterrupted one.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..errors import InvalidArgumentError

Mixing = Callable[[Any, torch.Tensor], tuple[Any, torch.Tensor]]


def build_mixing(mixup_alpha: float, cutmix_alpha: float, num_classes: int | None) -> Mixing | None:
    """The batch transform the alphas ask for (None when both are 0)."""
    if not (mixup_alpha or cutmix_alpha):
        return None
    if num_classes is None:
        raise InvalidArgumentError("mixup_alpha and cutmix_alpha need the number of classes: train a zoo model (its "
                                   "card has it), data with class names, or pass labels=[...]")
    from torchvision.transforms import v2  # torchvision's transforms load only for runs that mix

    chosen: list[Any] = []
    if mixup_alpha:
        chosen.append(v2.MixUp(alpha=float(mixup_alpha), num_classes=num_classes))
    if cutmix_alpha:
        chosen.append(v2.CutMix(alpha=float(cutmix_alpha), num_classes=num_classes))
    transform = chosen[0] if len(chosen) == 1 else v2.RandomChoice(chosen)

    def mix(inputs: Any, target: torch.Tensor) -> tuple[Any, torch.Tensor]:
        if not (isinstance(inputs, torch.Tensor) and inputs.dim() == 4 and inputs.is_floating_point()):
            raise InvalidArgumentError("mixup_alpha and cutmix_alpha mix image batches (N, C, H, W); this data gives "
                                       f"{_describe(inputs)}: train it without them")
        if target.dim() != 1 or target.is_floating_point():
            raise InvalidArgumentError("mixup_alpha and cutmix_alpha need one class index per image as the target; "
                                       f"this data gives a {target.dtype} target of shape {list(target.shape)}")
        images, soft = transform(inputs, target)
        return images, soft

    return mix


def _describe(inputs: Any) -> str:
    if isinstance(inputs, torch.Tensor):
        return f"a tensor of shape {list(inputs.shape)}"
    return f"a {type(inputs).__name__}"
