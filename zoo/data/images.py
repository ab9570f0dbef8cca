"""Image preprocessing from a card's input spec.

    >>> card = zoo.get_card("resnet50")
    >>> transform = image_transform(card)              # what the default weights expect
    >>> batch = transform(pil_image).unsqueeze(0)      # float tensor [1, 3, 224, 224]

Evaluation: resize the shorter side to ``resize_size`` (``size`` when unset), center-crop
``size``, scale to [0, 1], normalize with the card's mean and std. Training: a random
resized crop of ``size`` and a random horizontal flip instead of resize + crop. Images
may be PIL images, numpy arrays (H, W, C) or uint8 tensors (C, H, W); grey or RGBA
images are turned into RGB first.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..cards import ImageInput, ModelCard
from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from torchvision.transforms import v2


def image_transform(spec: ImageInput | ModelCard | Any, *, train: bool = False) -> "v2.Compose":
    """The torchvision transform that turns one image into a model's input tensor.

    Args:
        spec: an `ImageInput`; a `ModelCard` (its default weights' input, as
            `card.input_for()` gives); or a module `zoo.create` made (its card).
        train: random resized crop and horizontal flip (augmentation for training)
            instead of the deterministic resize and center crop.
    """
    spec = _image_input(spec)
    import torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import v2

    interpolation = InterpolationMode(spec.interpolation)
    if train:
        geometry = [v2.RandomResizedCrop(spec.size, interpolation=interpolation, antialias=True),
                    v2.RandomHorizontalFlip()]
    else:
        geometry = [v2.Resize(spec.resize_size or spec.size, interpolation=interpolation, antialias=True),
                    v2.CenterCrop(spec.size)]
    # PIL images are resized as PIL images (as torchvision's presets do), so results match theirs exactly.
    return v2.Compose([
        _array_to_image,
        v2.RGB(),
        *geometry,
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(spec.mean), std=list(spec.std)),
    ])


def _array_to_image(image: Any) -> Any:
    """numpy arrays (H, W, C) become image tensors; PIL images and tensors pass through."""
    import numpy as np

    if isinstance(image, np.ndarray):
        from torchvision.transforms.v2 import functional

        return functional.to_image(image)
    return image


def _image_input(spec: Any) -> ImageInput:
    card = getattr(spec, "zoo_card", None)
    if card is not None:
        spec = card
    if isinstance(spec, ModelCard):
        found = spec.input_for()
        if not isinstance(found, ImageInput):
            raise InvalidArgumentError(f"model {spec.name!r} takes {getattr(found, 'kind', 'no declared')} input, "
                                       "not images; image_transform needs an image model's card")
        return found
    if not isinstance(spec, ImageInput):
        raise InvalidArgumentError(f"image_transform needs a zoo.ImageInput, a model card or a zoo-created model, "
                                   f"got {type(spec).__name__}")
    return spec
