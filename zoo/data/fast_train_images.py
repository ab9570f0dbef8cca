"""Augmented training on image files without decoding pixels the random crop throws away.

    >>> reader = train_file_reader(image_transform(spec, train=True))   # None unless its shape is recognised
    >>> x = reader("photo.jpg")         # what the transform gives on read_image("photo.jpg"), faster

A training transform that begins with a random resized crop (after steps that only turn the
picture into RGB, as `zoo.data.images.image_transform` builds it) is applied to a file as:

1. the file's size is read from its header, without decoding;
2. the crop box is drawn on that size by torchvision's own sampler
   (``transforms.RandomResizedCrop.get_params``): the same random calls in the same order as the
   transform's, so with the same seed the same box;
3. a JPEG whose box stays at least `DRAFT_MARGIN` times the output size (each side) at 1/2, 1/4
   or 1/8 scale is decoded at the largest such reduction (libjpeg's scaled decoding through PIL's
   ``draft``) and only the box is resized to the output size, as 8-bit pixels. A fixed reduction
   per file would not do: the smallest crop of a 2000x1500 photo (scale 0.08) is about 424 pixels
   on its short side, under 224 at half size. Values then differ from the reference as
   `zoo.data.fast_images` documents (`JPEG_MEAN_LEVELS`, ...);
4. any other file (PNG, ..., or a JPEG whose box is too small to reduce) is decoded whole and
   cropped and resized by torchvision's own function: the reference tensors exactly;
5. the transform's later steps (flip, colour jitter, normalisation, ...) run unchanged.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import DataError
from .fast_images import DRAFT_MARGIN
from .images import to_rgb

# A step from this module turns a picture into RGB (zoo's image_transform starts with one); a file reader
# has done that already.
RGB_STEP_MODULE = "zoo.data.images"


class FastTrainImageFile:
    """path -> the training transform's output, the crop box drawn before decoding (picklable, for DataLoader
    workers). Build it with `train_file_reader`."""

    def __init__(self, crop: Any, rest: Sequence[Callable[[Any], Any]], interpolation: Any) -> None:
        self.crop = crop
        self.rest = list(rest)
        self.interpolation = interpolation  # the crop's, as an InterpolationMode

    def __call__(self, path: str | os.PathLike[str]) -> Any:
        result = self.cropped(path)
        for step in self.rest:
            result = step(result)
        return result

    def cropped(self, path: str | os.PathLike[str]) -> Any:
        """The random resized crop of the file at `path`, as an RGB PIL image of the crop's output size."""
        from PIL import Image
        from torchvision.transforms import RandomResizedCrop  # reason: torchvision loads only when images are read
        from torchvision.transforms.v2 import functional

        out_height, out_width = (int(v) for v in self.crop.size)
        try:
            with Image.open(path) as image:
                # get_params reads only the size (and the bands) of the opened, not yet decoded, picture
                top, left, height, width = RandomResizedCrop.get_params(image, list(self.crop.scale),
                                                                        list(self.crop.ratio))
                full_width, full_height = image.size
                need = (math.ceil(full_width * out_width * DRAFT_MARGIN / width),
                        math.ceil(full_height * out_height * DRAFT_MARGIN / height))
                drafted = None
                if full_width >= 2 * need[0] and full_height >= 2 * need[1]:
                    drafted = image.draft("RGB", need)  # None unless a JPEG
                image.load()
                rgb = to_rgb(image)
                if drafted is None:  # whole: the reference's own crop and resize, so the same pixels
                    return functional.resized_crop(rgb, top, left, height, width, [out_height, out_width],
                                                   interpolation=self.interpolation, antialias=True)
                scale = drafted[1][2] / full_width
                return _resized_region(rgb, (left * scale, top * scale, (left + width) * scale,
                                             (top + height) * scale), (out_width, out_height),
                                       self.interpolation)
        except DataError:
            raise
        except Exception as exc:  # decoders of damaged files raise many kinds (OSError, SyntaxError, struct.error, ...)
            raise DataError(f"cannot read image {os.fspath(path)}: {exc}") from exc

    def __repr__(self) -> str:
        steps = ", ".join(repr(step) for step in [self.crop, *self.rest])
        return f"FastTrainImageFile([{steps}], draft_margin={DRAFT_MARGIN})"


def train_file_reader(transform: Any) -> FastTrainImageFile | None:
    """A `FastTrainImageFile` applying `transform` to files, or None when its shape is not recognised.

    Recognised: a torchvision ``Compose`` (v1 or v2) whose first step, after any that only turn the
    picture into RGB (``v2.RGB``, zoo's converters), is a ``RandomResizedCrop`` (v1 or v2) with an
    interpolation PIL has. Everything else keeps decoding whole pictures.
    """
    from torchvision import transforms  # reason: torchvision loads only when images are read
    from torchvision.transforms import v2

    if not isinstance(transform, (transforms.Compose, v2.Compose)):
        return None
    steps = list(transform.transforms)
    first = 0
    while first < len(steps) and _turns_into_rgb(steps[first]):
        first += 1
    if first == len(steps) or not isinstance(steps[first], (transforms.RandomResizedCrop, v2.RandomResizedCrop)):
        return None
    crop = steps[first]
    interpolation = crop.interpolation
    if isinstance(interpolation, str) and interpolation in {mode.value for mode in transforms.InterpolationMode}:
        interpolation = transforms.InterpolationMode(interpolation)  # v2 takes names too
    if interpolation not in transforms.functional.pil_modes_mapping:
        return None
    return FastTrainImageFile(crop, steps[first + 1:], interpolation)


def _turns_into_rgb(step: Any) -> bool:
    from torchvision.transforms import v2  # reason: torchvision loads only when images are read

    return isinstance(step, v2.RGB) or getattr(step, "__module__", None) == RGB_STEP_MODULE


def _resized_region(rgb: Any, region: tuple[float, float, float, float], size: tuple[int, int],
                    interpolation: Any) -> Any:
    """`region` (left, top, right, bottom; fractional) of `rgb` resized to `size` (width, height), the filter
    reading no pixel beyond the region's edge pixels, as resizing the cropped picture reads none."""
    from torchvision.transforms.functional import pil_modes_mapping  # reason: torchvision loads only when needed

    left, top = math.floor(region[0]), math.floor(region[1])
    right, bottom = min(math.ceil(region[2]), rgb.width), min(math.ceil(region[3]), rgb.height)
    enclosing = rgb.crop((left, top, right, bottom))
    box = (region[0] - left, region[1] - top, min(region[2], right) - left, min(region[3], bottom) - top)
    return enclosing.resize(size, pil_modes_mapping[interpolation], box=box)
