"""Image preprocessing from a card's input spec.

    >>> card = zoo.get_card("resnet50")
    >>> transform = image_transform(card)              # what the default weights expect
    >>> batch = transform(pil_image).unsqueeze(0)      # float tensor [1, 3, 224, 224]

Evaluation: resize the shorter side to ``resize_size`` (``size`` when unset), center-crop
``size``, scale to [0, 1], normalize with the card's mean and std. Training: a random
resized crop of ``size`` and a random horizontal flip instead of resize + crop. Images
may be PIL images, numpy arrays (H, W, C) or uint8 tensors (C, H, W); grey or RGBA
images are turned into RGB first, PIL images by `to_rgb` (16-bit and float pixels scaled
faithfully). Image files are read with `read_image`.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..cards import ImageInput, ModelCard
from ..errors import DataError, InvalidArgumentError

if TYPE_CHECKING:
    from PIL import Image
    from torchvision.transforms import v2

# PIL modes of 8 bits per channel, which Image.convert("RGB") turns into RGB without loss of scale.
EIGHT_BIT_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
SIXTEEN_BIT_MAX = 65535


def read_image(path: str | os.PathLike[str]) -> Image.Image:
    """The image file at `path`, decoded whole and converted to 8-bit RGB by `to_rgb`.

    Raises `DataError` naming the file when it cannot be opened, decoded or converted.
    """
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except DataError:
        raise
    except Exception as exc:  # decoders of damaged files raise many kinds (OSError, SyntaxError, struct.error, ...)
        raise DataError(f"cannot read image {os.fspath(path)}: {exc}") from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """`image` as 8-bit RGB, its pixel values scaled faithfully (the one conversion zoo uses).

    - 8-bit modes (L, P, RGBA, CMYK, ...): PIL's ``convert("RGB")``; an RGB image is returned as is.
    - 16-bit grey (modes ``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, and ``I`` holding values in
      [0, 65535], as PIL opens 16-bit PNG, TIFF and PGM files): value * 255 / 65535, rounded
      (value / 257). PNG, TIFF and PGM store samples scaled to the full 16-bit range.
    - Float grey (mode ``F``) with every value in [0, 1]: value * 255, rounded.

    Anything else is refused with a `DataError` naming the file: ``I`` values outside
    [0, 65535] and ``F`` values outside [0, 1] (depth maps, HDR, raw sensor counts) have
    no single right 8-bit scale, and a min-max stretch would change with each image.
    ``convert("RGB")`` would silently clip them to white or black.
    """
    if image.mode == "RGB":
        return image
    if image.mode in EIGHT_BIT_MODES:
        return image.convert("RGB")
    import numpy as np
    from PIL import Image

    name = getattr(image, "filename", "") or "the image"
    values = np.asarray(image)
    if image.mode == "F":
        _require_range(values, 0.0, 1.0, name, "scale it to [0, 1] or save it as 8- or 16-bit")
        grey = np.rint(values * 255)
    elif image.mode == "I" or image.mode.startswith("I;16"):
        _require_range(values, 0, SIXTEEN_BIT_MAX, name, "save it as 8- or 16-bit")
        grey = (values.astype(np.uint32) * 255 + SIXTEEN_BIT_MAX // 2) // SIXTEEN_BIT_MAX
    else:
        raise DataError(f"{name} has pixel mode {image.mode!r}, which zoo cannot turn into RGB faithfully: "
                        "save it as 8- or 16-bit RGB or greyscale")
    return Image.fromarray(grey.astype(np.uint8)).convert("RGB")


def _require_range(values: Any, low: float, high: float, name: str, fix: str) -> None:
    """Refuse pixel values outside [low, high] (NaN and infinity included): they have no one 8-bit scale."""
    import numpy as np

    finite = np.isfinite(values)
    if finite.all() and (values.size == 0 or (values.min() >= low and values.max() <= high)):
        return
    seen = f"values from {values[finite].min()} to {values[finite].max()}" if finite.any() else "no finite values"
    if not finite.all():
        seen += ", and NaN or infinity"
    raise DataError(f"{name} has {values.dtype} pixels outside [{low}, {high}] ({seen}), which have no single "
                    f"8-bit scale: {fix}")


def image_transform(spec: ImageInput | ModelCard | Any, *, train: bool = False) -> v2.Compose:
    """The torchvision transform that turns one image into a model's input tensor.

    Args:
        spec: an `ImageInput`; a `ModelCard` (its default weights' input, as
            `card.input_for()` gives); or a module `zoo.create` made (its card).
        train: random resized crop and horizontal flip (augmentation for training)
            instead of the deterministic resize and center crop.
    """
    spec = image_input(spec)
    import torch
    from torchvision.transforms import InterpolationMode, v2

    interpolation = InterpolationMode(spec.interpolation)
    if train:
        geometry = [v2.RandomResizedCrop(spec.size, interpolation=interpolation, antialias=True),
                    v2.RandomHorizontalFlip()]
    else:
        geometry = [v2.Resize(spec.resize_size or spec.size, interpolation=interpolation, antialias=True),
                    v2.CenterCrop(spec.size)]
    # PIL images are resized as PIL images (as torchvision's presets do), so results match theirs exactly.
    return v2.Compose([
        _to_image,
        v2.RGB(),
        *geometry,
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean=list(spec.mean), std=list(spec.std)),
    ])


def _to_image(image: Any) -> Any:
    """numpy arrays (H, W, C) become image tensors; PIL images become RGB (`to_rgb`); tensors pass through."""
    import numpy as np
    from PIL import Image

    if isinstance(image, np.ndarray):
        from torchvision.transforms.v2 import functional

        return functional.to_image(image)
    if isinstance(image, Image.Image):
        return to_rgb(image)
    return image


def image_input(spec: Any) -> ImageInput:
    """The `ImageInput` that `spec` (an input spec, a card, or a zoo-created model) stands for."""
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
