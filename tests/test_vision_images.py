"""image_transform: the preprocessing a card's weights expect, equal to torchvision's own presets."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.models as tv
from PIL import Image
from torch import nn

import zoo
from zoo.data.images import image_transform
from zoo.errors import InvalidArgumentError
from zoo.factory import attach_card


@pytest.fixture
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, size=(260, 310, 3), dtype=np.uint8))


@pytest.mark.parametrize("name, weights", [
    ("resnet50.imagenet1k_v2", tv.ResNet50_Weights.IMAGENET1K_V2),            # resize 232, bilinear
    ("vit_b_16_384.imagenet1k_swag_e2e_v1", tv.ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1),  # 384, bicubic
    ("vgg16.imagenet1k_features", tv.VGG16_Weights.IMAGENET1K_FEATURES),      # its own mean and std
])
def test_eval_transform_matches_torchvision_preset(name, weights, photo):
    ours = image_transform(zoo.get_card(name))
    theirs = weights.transforms()
    expected = theirs(photo)
    got = ours(photo)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-6)
    # uint8 tensors and arrays: torchvision's v1 and v2 tensor resize kernels round differently, so on a
    # smooth picture they agree within a grey level or two.
    two_levels = 2 / 255 / min(weights.transforms().std) + 1e-5
    y, x = np.mgrid[0:260, 0:310]
    smooth = np.stack([x * 255 / 310, y * 255 / 260, 128 + 100 * np.sin(x / 25) * np.cos(y / 30)], -1).astype(np.uint8)
    tensor_image = torch.from_numpy(smooth).permute(2, 0, 1).contiguous()
    torch.testing.assert_close(ours(tensor_image), theirs(tensor_image), atol=two_levels, rtol=0)
    torch.testing.assert_close(ours(smooth), theirs(tensor_image), atol=two_levels, rtol=0)


def test_train_transform_crops_randomly_to_the_card_size(photo):
    spec = zoo.get_card("efficientnet_b0").input
    train = image_transform(spec, train=True)
    torch.manual_seed(0)
    a, b = train(photo), train(photo)
    assert a.shape == b.shape == (3, spec.size, spec.size)
    assert not torch.equal(a, b)
    # Normalized with the card's statistics: a mid-grey image maps near (0.5 - mean) / std.
    grey = Image.new("RGB", (300, 300), (128, 128, 128))
    out = train(grey)
    expected = (128 / 255 - torch.tensor(spec.mean)) / torch.tensor(spec.std)
    torch.testing.assert_close(out.mean(dim=(1, 2)), expected, atol=1e-3, rtol=0)


def test_grey_and_rgba_images_become_three_channels(photo):
    transform = image_transform(zoo.get_card("resnet18"))
    for image in (photo.convert("L"), photo.convert("RGBA")):
        assert transform(image).shape == (3, 224, 224)


def test_transform_from_a_created_model_uses_its_card():
    module = nn.Identity()
    attach_card(module, zoo.get_card("vit_h_14_518"))
    assert image_transform(module)(Image.new("RGB", (600, 520))).shape == (3, 518, 518)


def test_non_image_spec_is_a_clear_error():
    with pytest.raises(InvalidArgumentError, match="ImageInput"):
        image_transform({"size": 224})
    text_card = zoo.ModelCard(name="t", builder="m:f", task="text-classification", modality="text",
                              input=zoo.TextInput())
    with pytest.raises(InvalidArgumentError, match="not images"):
        image_transform(text_card)
