"""Image files to evaluation tensors without decoding pixels that are thrown away.

    >>> spec = zoo.get_card("resnet50").input
    >>> x = load_image("photo.jpg", spec)          # float tensor [3, 224, 224], as image_transform gives

`load_image(path, spec)` computes what ``image_transform(spec)(read_image(path))`` computes (resize
the shorter side to ``resize_size``, center-crop ``size`` with the card's interpolation, scale to
[0, 1], normalize), faster on large photos:

- A JPEG at least `DRAFT_MARGIN` times larger than the resized picture is decoded at 1/2, 1/4 or
  1/8 scale (libjpeg's scaled decoding through PIL's ``draft``), the largest reduction that keeps
  it that large. The decoder's reduction averages blocks of pixels, a slightly different low-pass
  filter from the resize's antialiasing: values move by half a grey level on average, 99% of them by
  a few, sharp edges by up to about 25 (`JPEG_MEAN_LEVELS`, `JPEG_P99_LEVELS`, `JPEG_MAX_LEVELS`);
  benchmarks/images.py measures the top-1 agreement this gives.
- Only the center crop's region is resized, as 8-bit pixels; conversion to float comes after.
- Every other file (PNG, BMP, small JPEGs, ...) takes the reference path: the same tensors exactly.

Colour modes (grey, CMYK, palette, 16-bit) are converted as `read_image` converts them; like
`read_image` (and torchvision's ImageFolder), EXIF orientation is not applied.

`loader_workers` is the rule zoo's commands use for DataLoader worker processes.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..cards import ImageInput
from ..errors import DataError

DRAFT_MARGIN = 1.0
"""A JPEG is decoded at reduced scale only while it stays this many times the resized size (each side): 1.0, the
largest reduction that keeps it at least as large (2.0 halves the differences and costs a third more time)."""
# How far a JPEG decoded at reduced scale may be from the reference, in grey levels (0-255) of the 8-bit picture
# (a tensor difference times std times 255). Seen on photo-like pictures: mean 0.3-0.6, 99% within 2-6, max 10-23.
JPEG_MEAN_LEVELS = 1.0
"""Mean difference over a tensor."""
JPEG_P99_LEVELS = 8.0
"""Difference that 99% of a tensor's values stay within."""
JPEG_MAX_LEVELS = 32.0
"""Largest difference of any value (sharp edges: the decoder's block averaging and the antialiasing filter differ)."""
MAX_WORKERS = 8
FILES_PER_WORKER = 16  # fewer files than this per worker process: starting the worker costs more than it saves


def load_image(path: str | os.PathLike[str], spec: ImageInput) -> torch.Tensor:
    """The evaluation tensor ``[3, size, size]`` of the image file at `path`, prepared as `spec` says.

    Raises `DataError` naming the file when it cannot be opened, decoded or converted.
    """
    from PIL import Image

    from .images import to_rgb  # reason: zoo.data.images is this module's reference

    try:
        with Image.open(path) as image:
            width, height = image.size
            resized = resized_size(width, height, spec.resize_size or spec.size)
            if min(resized) < spec.size:  # the crop pads: leave that to the reference transform
                return _reference(path, spec)
            box = crop_box(width, height, resized, spec.size)
            need = (math.ceil(resized[0] * DRAFT_MARGIN), math.ceil(resized[1] * DRAFT_MARGIN))
            drafted = image.draft("RGB", need) if width >= 2 * need[0] and height >= 2 * need[1] else None
            image.load()
            rgb = to_rgb(image)
            if drafted is None:
                # full decode: resize whole and crop, the reference's operations, so the same pixels
                rgb = rgb.resize(resized, _resample(spec.interpolation)).crop(_crop(resized, spec.size))
            else:
                scale_x, scale_y = drafted[1][2] / width, drafted[1][3] / height
                region = (box[0] * scale_x, box[1] * scale_y, box[2] * scale_x, box[3] * scale_y)
                rgb = rgb.resize((spec.size, spec.size), _resample(spec.interpolation), box=region)
    except DataError:
        raise
    except Exception as exc:  # decoders of damaged files raise many kinds (OSError, SyntaxError, struct.error, ...)
        raise DataError(f"cannot read image {os.fspath(path)}: {exc}") from exc
    return _normalized(rgb, spec)


def resized_size(width: int, height: int, shorter: int) -> tuple[int, int]:
    """``(width, height)`` after resizing the shorter side to `shorter` (the longer one rounded down)."""
    if width <= height:
        return shorter, int(shorter * height / width)
    return int(shorter * width / height), shorter


def crop_box(width: int, height: int, resized: tuple[int, int], size: int) -> tuple[float, float, float, float]:
    """The center crop of the resized picture, in the original picture's pixel coordinates."""
    left, top, right, bottom = _crop(resized, size)
    sx, sy = width / resized[0], height / resized[1]
    return left * sx, top * sy, right * sx, bottom * sy


class FastImageFile:
    """path -> evaluation tensor by `load_image` (picklable, for DataLoader workers)."""

    def __init__(self, spec: ImageInput) -> None:
        self.spec = spec

    def __call__(self, path: str | os.PathLike[str]) -> torch.Tensor:
        return load_image(path, self.spec)

    def __repr__(self) -> str:  # the feature cache keys on it: say what decides the pixels
        return f"FastImageFile({self.spec!r}, draft_margin={DRAFT_MARGIN})"


def loader_workers(files: int, *, cores: int | None = None) -> int:
    """DataLoader worker processes for reading `files` image files: ``min(cores, 8)``, fewer for few files.

    One worker per `FILES_PER_WORKER` files at most, and none (read in the main process) below
    two workers' worth: a worker's start (a process, its imports) costs about what decoding a
    few dozen photos does. Eight keep a GPU busy with resnet50-sized models; more add memory.
    """
    available = cores if cores is not None else _cores()
    workers = min(available, MAX_WORKERS, files // FILES_PER_WORKER)
    return workers if workers >= 2 else 0


def image_batches(paths: Sequence[str | os.PathLike[str]], spec: ImageInput, *, batch_size: int,
                  workers: int | None = None, pin_memory: bool = False) -> Iterator[torch.Tensor]:
    """Batches ``[n, 3, size, size]`` of the files in `paths`, in order, read by `loader_workers` processes."""
    from torch.utils.data import DataLoader

    count = loader_workers(len(paths)) if workers is None else workers
    loader = DataLoader(_Files(paths, FastImageFile(spec)), batch_size=batch_size, num_workers=count,
                        pin_memory=pin_memory)
    yield from loader


class _Files(torch.utils.data.Dataset[torch.Tensor]):
    def __init__(self, paths: Sequence[str | os.PathLike[str]], read: FastImageFile) -> None:
        self.paths = list(paths)
        self.read = read

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.read(self.paths[index])


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        return os.cpu_count() or 1


def _crop(resized: tuple[int, int], size: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the `size` square at the center of `resized`, placed as torchvision places it."""
    left = int(round((resized[0] - size) / 2.0))
    top = int(round((resized[1] - size) / 2.0))
    return left, top, left + size, top + size


def _normalized(rgb: Any, spec: ImageInput) -> torch.Tensor:
    """A PIL RGB image as the card's normalized float tensor (the reference's operations, in its order)."""
    import numpy as np
    from torchvision.transforms.v2 import functional

    pixels = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1)
    scaled = functional.to_dtype(pixels, torch.float32, scale=True)
    normalized: torch.Tensor = functional.normalize(scaled, mean=list(spec.mean), std=list(spec.std))
    return normalized


def _reference(path: str | os.PathLike[str], spec: ImageInput) -> torch.Tensor:
    from .images import image_transform, read_image  # reason: zoo.data.images is this module's reference

    result: torch.Tensor = image_transform(spec)(read_image(path))
    return result


def _resample(name: str) -> int:
    from PIL import Image

    return {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
            "bicubic": Image.Resampling.BICUBIC}[name]
