"""zoo.data.fast_images: evaluation tensors of image files (JPEGs decoded at reduced size) against the reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import zoo
from zoo.cards import ImageInput
from zoo.data.fast_images import (
    JPEG_MAX_LEVELS,
    JPEG_MEAN_LEVELS,
    JPEG_P99_LEVELS,
    FastImageFile,
    image_batches,
    load_image,
    loader_workers,
)
from zoo.data.folders import ImageFileTransform, image_folder
from zoo.data.images import image_transform, read_image
from zoo.errors import DataError

RESNET = ImageInput(size=224, resize_size=232)                                # resnet50's: bilinear
SMALL = ImageInput(size=112, resize_size=128, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))


def picture(width: int = 800, height: int = 600, seed: int = 0) -> Image.Image:
    """Photo-like: a smooth background, sharp-edged shapes, light noise."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).resize((width, height),
                                                                                    Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(image)
    for _ in range(6):
        x, y, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(20, 150)
        pen.ellipse([x - r, y - r, x + r, y + r * 0.7], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    noisy = np.asarray(image, dtype=np.int16) + rng.normal(0, 4, (height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def reference(path, spec: ImageInput) -> torch.Tensor:
    return image_transform(spec)(read_image(path))


def levels(got: torch.Tensor, expected: torch.Tensor, spec: ImageInput) -> torch.Tensor:
    """The differences in grey levels of the 8-bit picture (normalized values times std times 255)."""
    return (got - expected).abs() * torch.tensor(spec.std).view(3, 1, 1) * 255


def assert_close_to_reference(got: torch.Tensor, expected: torch.Tensor, spec: ImageInput) -> None:
    assert got.shape == expected.shape and got.dtype == torch.float32
    difference = levels(got, expected, spec).flatten()
    assert float(difference.mean()) <= JPEG_MEAN_LEVELS
    assert float(difference.quantile(0.99)) <= JPEG_P99_LEVELS
    assert float(difference.max()) <= JPEG_MAX_LEVELS


@pytest.mark.parametrize("spec", [RESNET, SMALL])
def test_a_large_jpeg_is_decoded_at_reduced_size_and_stays_within_the_tolerance(tmp_path, spec, drafts):
    path = tmp_path / "photo.jpg"
    picture().save(path, quality=90)
    got = load_image(path, spec)
    assert drafts and drafts[-1] >= 2  # 800x600 holds a 2x (resnet) or 4x (small) smaller decode of the resized size
    expected = reference(path, spec)
    assert_close_to_reference(got, expected, spec)
    assert not torch.equal(got, expected)  # the reduced decode was used, not the reference path


@pytest.mark.parametrize("spec", [RESNET, SMALL])
@pytest.mark.parametrize("mode", ["RGB", "L", "P", "RGBA"])
def test_png_and_other_formats_give_the_reference_tensors_exactly(tmp_path, spec, mode):
    path = tmp_path / "picture.png"
    picture(seed=1).convert(mode).save(path)
    assert torch.equal(load_image(path, spec), reference(path, spec))


def test_a_jpeg_too_small_to_reduce_gives_the_reference_tensors_exactly(tmp_path, drafts):
    path = tmp_path / "small.jpg"
    picture(400, 300).save(path, quality=90)
    assert torch.equal(load_image(path, RESNET), reference(path, RESNET))
    assert drafts == []  # never asked for a reduced decode


def test_an_image_smaller_than_the_crop_is_padded_as_the_reference_pads_it(tmp_path):
    path = tmp_path / "tiny.png"
    picture(90, 60).save(path)
    spec = ImageInput(size=224, resize_size=200)  # resized shorter side 200 < crop 224: the crop pads
    assert torch.equal(load_image(path, spec), reference(path, spec))


@pytest.mark.parametrize("mode", ["L", "CMYK"])
def test_grey_and_cmyk_jpegs_become_rgb_as_the_reference_converts_them(tmp_path, mode, drafts):
    path = tmp_path / f"{mode}.jpg"
    picture(seed=2).convert(mode).save(path, quality=90)
    got = load_image(path, SMALL)
    assert drafts[-1] >= 2 and got.shape == (3, 112, 112)
    assert_close_to_reference(got, reference(path, SMALL), SMALL)
    if mode == "L":
        assert torch.equal(got[0] * 0.25 + 0.5, got[1] * 0.25 + 0.5)  # grey: the three channels alike


def test_exif_orientation_is_left_as_the_reference_leaves_it(tmp_path):
    # Neither zoo's reference (read_image) nor torchvision's ImageFolder applies EXIF orientation: same here.
    path = tmp_path / "rotated.jpg"
    image = picture(800, 600, seed=3)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.save(path, quality=90, exif=exif.tobytes())
    got = load_image(path, SMALL)
    assert_close_to_reference(got, reference(path, SMALL), SMALL)
    rotated = tmp_path / "upright.png"
    image.transpose(Image.Transpose.ROTATE_270).save(rotated)
    assert float(levels(got, reference(rotated, SMALL), SMALL).mean()) > 10 * JPEG_MEAN_LEVELS


def test_a_damaged_file_is_a_data_error_naming_it(tmp_path):
    path = tmp_path / "cut.jpg"
    picture().save(path, quality=90)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(DataError, match="cut.jpg"):
        load_image(path, RESNET)


def test_evaluation_folders_read_files_by_the_fast_path_and_training_folders_augment(tmp_path):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(2):
            picture(seed=10 * i + ord(label)).save(tmp_path / label / f"{i}.jpg", quality=90)
    card = zoo.get_card("resnet50")
    val = zoo.data.dataset_for(card, tmp_path)
    assert isinstance(val.transform, FastImageFile)
    sample, label = val[2]
    assert label == 1 and torch.equal(sample, load_image(tmp_path / "b" / "0.jpg", card.input_for()))
    assert isinstance(image_folder(tmp_path, card.input_for(), train=True, augment=False).transform, FastImageFile)
    train = image_folder(tmp_path, card.input_for(), train=True)
    assert isinstance(train.transform, ImageFileTransform) and train.augments
    # the feature cache keys on the transform's repr: it names the spec and the decoding
    assert "size=224" in repr(val.transform) and "draft_margin" in repr(val.transform)


def test_image_batches_keep_the_order_of_the_paths(tmp_path):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"{i}.png")
        picture(160, 120, seed=i).save(paths[-1])
    batches = list(image_batches(paths, SMALL, batch_size=2, workers=0))
    assert [len(b) for b in batches] == [2, 2, 1]
    assert torch.equal(torch.cat(batches), torch.stack([load_image(p, SMALL) for p in paths]))


def test_worker_processes_follow_the_number_of_files_and_cores():
    assert loader_workers(10, cores=16) == 0           # a few files: read in the main process
    assert loader_workers(40, cores=16) == 2           # one worker per 16 files
    assert loader_workers(5000, cores=16) == 8         # at most eight
    assert loader_workers(5000, cores=2) == 2          # at most the cores
    assert loader_workers(5000, cores=1) == 0          # one core: no worker helps
    assert math.isfinite(loader_workers(100))
