"""zoo.data.fast_train_images: augmented training on image files, the crop box drawn before decoding, against the
reference (the file decoded whole, then the same torchvision transform) with the same seed."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torchvision import transforms
from torchvision.transforms import InterpolationMode, v2

from zoo.cards import ImageInput
from zoo.data.fast_images import JPEG_MAX_LEVELS, JPEG_MEAN_LEVELS, JPEG_P99_LEVELS
from zoo.data.fast_train_images import FastTrainImageFile, train_file_reader
from zoo.data.folders import image_folder
from zoo.data.images import image_transform, read_image
from zoo.errors import DataError

RESNET = ImageInput(size=224, resize_size=232)
SMALL = ImageInput(size=112, resize_size=128, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
SEEDS = range(4)


def picture(width: int, height: int, seed: int = 0) -> Image.Image:
    """Photo-like: a smooth background, sharp-edged shapes, light noise."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)).resize((width, height),
                                                                                    Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(image)
    for _ in range(8):
        x, y, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.03, 0.2) * min(width, height)
        pen.ellipse([x - r, y - r, x + r, y + r * 0.7], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    noisy = np.asarray(image, dtype=np.int16) + rng.normal(0, 4, (height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> object:
    path = tmp_path_factory.mktemp("photos") / "photo.jpg"
    picture(2000, 1500).save(path, quality=90)
    return path


@pytest.fixture
def boxes(monkeypatch):
    """The crop boxes (top, left, height, width) torchvision's v2 RandomResizedCrop draws, in order."""
    seen: list[tuple[int, int, int, int]] = []
    original = v2.RandomResizedCrop.make_params

    def make_params(self, flat_inputs):
        params = original(self, flat_inputs)
        seen.append((params["top"], params["left"], params["height"], params["width"]))
        return params

    monkeypatch.setattr(v2.RandomResizedCrop, "make_params", make_params)
    return seen


def both(transform, path, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(fast, reference) outputs with the same seed; both leave the generator in the same state."""
    reader = train_file_reader(transform)
    assert reader is not None
    torch.manual_seed(seed)
    fast = reader(path)
    after_fast = torch.rand(1)
    torch.manual_seed(seed)
    expected = transform(read_image(path))
    assert torch.equal(after_fast, torch.rand(1))  # the same random calls, in the same order
    return fast, expected


def levels(got: torch.Tensor, expected: torch.Tensor, spec: ImageInput) -> torch.Tensor:
    return (got - expected).abs() * torch.tensor(spec.std).view(3, 1, 1) * 255


def test_the_crop_boxes_are_torchvisions_exactly(photo, boxes, monkeypatch):
    drawn: list[tuple[int, int, int, int]] = []
    sampler = transforms.RandomResizedCrop.get_params

    def recorded(img, scale, ratio):
        drawn.append(sampler(img, scale, ratio))
        return drawn[-1]

    monkeypatch.setattr(transforms.RandomResizedCrop, "get_params", staticmethod(recorded))
    transform = image_transform(RESNET, train=True)
    reader = train_file_reader(transform)
    for seed in range(10):
        torch.manual_seed(seed)
        reader(photo)
        torch.manual_seed(seed)
        transform(read_image(photo))
    assert len(drawn) == 10 and drawn == boxes
    assert len(set(drawn)) == 10  # different seeds, different boxes


@pytest.mark.parametrize("spec", [RESNET, SMALL])
def test_a_large_jpeg_is_decoded_at_reduced_size_within_the_tolerance(photo, spec, drafts):
    transform = image_transform(spec, train=True)
    for seed in SEEDS:
        fast, expected = both(transform, photo, seed)
        assert fast.shape == expected.shape == (3, spec.size, spec.size) and fast.dtype == torch.float32
        difference = levels(fast, expected, spec).flatten()
        assert float(difference.mean()) <= JPEG_MEAN_LEVELS
        assert float(difference.quantile(0.99)) <= JPEG_P99_LEVELS
        assert float(difference.max()) <= JPEG_MAX_LEVELS
    assert drafts[::2] and min(drafts[::2]) >= 2  # every fast read reduced (the reference's reads never draft)


@pytest.mark.parametrize("spec", [RESNET, SMALL])
@pytest.mark.parametrize("mode", ["RGB", "L", "P"])
def test_png_files_give_the_reference_tensors_exactly(tmp_path, spec, mode):
    path = tmp_path / "picture.png"
    picture(600, 450, seed=1).convert(mode).save(path)
    for seed in SEEDS:
        fast, expected = both(image_transform(spec, train=True), path, seed)
        assert torch.equal(fast, expected)


def test_a_small_jpeg_gives_the_reference_tensors_exactly(tmp_path, drafts):
    path = tmp_path / "small.jpg"
    picture(400, 300).save(path, quality=90)
    for seed in SEEDS:
        fast, expected = both(image_transform(RESNET, train=True), path, seed)
        assert torch.equal(fast, expected)
    assert set(drafts) <= {1}  # never decoded at reduced size


@pytest.mark.parametrize(("scale", "reduction"), [(0.02, 1), (0.1, 2), (0.5, 4)])
def test_the_reduction_is_the_largest_that_keeps_the_crop_at_least_the_output_size(photo, drafts, scale, reduction):
    # square crops of a fixed area of the 2000x1500 photo: sides 245, 548 and 1225 pixels, output 224
    transform = v2.Compose([v2.RandomResizedCrop(224, scale=(scale, scale), ratio=(1.0, 1.0), antialias=True),
                            v2.ToImage(), v2.ToDtype(torch.float32, scale=True)])
    fast, expected = both(transform, photo, seed=3)
    assert (drafts[0] if drafts else 1) == reduction
    if reduction == 1:  # a crop under twice the output size: decoded whole, so the reference's pixels
        assert torch.equal(fast, expected)
    else:
        assert float((fast - expected).abs().mean()) * 255 <= JPEG_MEAN_LEVELS


def test_later_random_steps_run_unchanged_in_the_same_order(tmp_path):
    path = tmp_path / "picture.png"
    picture(640, 480, seed=4).save(path)
    transform = v2.Compose([v2.RandomResizedCrop(96, interpolation=InterpolationMode.BICUBIC, antialias=True),
                            v2.RandomHorizontalFlip(), v2.ColorJitter(0.4, 0.4, 0.4, 0.1), v2.RandomGrayscale(0.3),
                            v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5] * 3, [0.2] * 3)])
    outputs = []
    for seed in range(8):
        fast, expected = both(transform, path, seed)
        assert torch.equal(fast, expected)
        outputs.append(fast)
    assert len({o.sum().item() for o in outputs}) == 8  # the augmentation is random: each seed its own picture


@pytest.mark.parametrize("transform", [
    v2.Compose([v2.Resize(256), v2.RandomResizedCrop(224)]),               # something before the crop
    v2.Compose([v2.ToImage(), v2.RandomResizedCrop(224)]),                 # the crop on a tensor
    v2.Compose([v2.RandomHorizontalFlip(), v2.ToImage()]),                 # no crop
    v2.RandomResizedCrop(224),                                             # not a Compose
])
def test_other_transforms_keep_the_whole_picture_path(transform):
    assert train_file_reader(transform) is None


def test_training_folders_use_the_fast_reader_and_stay_picklable_for_workers(tmp_path, drafts):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        picture(1200, 900, seed=ord(label)).save(tmp_path / label / "0.jpg", quality=90)
    data = image_folder(tmp_path, SMALL, train=True)
    assert isinstance(data.transform.fast, FastTrainImageFile) and data.augments
    assert "draft_margin" in repr(data.transform)
    torch.manual_seed(0)
    sample, label = data[1]
    assert label == 1 and drafts and drafts[-1] >= 2
    copy = pickle.loads(pickle.dumps(data))
    torch.manual_seed(0)
    assert torch.equal(copy[1][0], sample)
    # without augmentation nothing random is left: the evaluation reader, as before
    assert image_folder(tmp_path, SMALL, train=True, augment=False).augments is False


def test_a_damaged_file_is_a_data_error_naming_it(tmp_path, photo):
    path = tmp_path / "cut.jpg"
    path.write_bytes(photo.read_bytes()[:3000])
    reader = train_file_reader(image_transform(RESNET, train=True))
    with pytest.raises(DataError, match="cut.jpg"):
        reader(path)
