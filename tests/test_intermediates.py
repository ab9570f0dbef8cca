"""zoo.features.forward_intermediates for every family, and NCHW maps from ViT and Swin stages."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("single_thread")

from test_speech_support import TINY_ARCH, create_tiny  # noqa: E402
from test_text_support import TINY, padded_batch, single_thread  # noqa: E402, F401

import zoo  # noqa: E402
from zoo.errors import InvalidArgumentError  # noqa: E402
from zoo.features import forward_features, forward_intermediates, num_intermediates, take_indices  # noqa: E402

# ---------------------------------------------------------------------------- indices


def test_indices_follow_timm():
    assert take_indices(5) == (0, 1, 2, 3, 4)
    assert take_indices(5, 2) == (3, 4)  # an int: the last n
    assert take_indices(5, [0, -1]) == (0, 4)  # negative from the end, in the order asked
    with pytest.raises(InvalidArgumentError, match=r"\[5\] out of range; the model has 5 layers: indices 0 to 4 "
                                                   r"\(or -5 to -1\)"):
        take_indices(5, [1, 5])
    with pytest.raises(InvalidArgumentError, match="give a number from 1 to 5"):
        take_indices(5, 6)
    with pytest.raises(InvalidArgumentError, match="more than once"):
        take_indices(5, [4, -1])
    with pytest.raises(InvalidArgumentError, match="non-empty list"):
        take_indices(5, "last")


# ---------------------------------------------------------------------------- image


def test_image_stages_equal_the_features_only_maps():
    torch.manual_seed(0)
    model = zoo.create("resnet18", pretrained=False).eval()
    maps_model = zoo.create("resnet18", pretrained=False, features_only=True).eval()
    maps_model.model.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        every = forward_intermediates(model, x, intermediates_only=True)
        final, picked = forward_intermediates(model, x, indices=[-1, 1])
        expected = maps_model(x)
    assert num_intermediates(model) == 5
    assert [tuple(m.shape[1:]) for m in every] == [(64, 32, 32), (64, 16, 16), (128, 8, 8), (256, 4, 4),
                                                   (512, 2, 2)]
    for got, want in zip(every, expected, strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(picked[0], expected[4])
    torch.testing.assert_close(picked[1], expected[1])
    torch.testing.assert_close(final, expected[4])
    with torch.no_grad():
        torch.testing.assert_close(forward_features(model, x), expected[4])


def test_intermediates_only_stops_after_the_last_layer_asked_for():
    model = zoo.create("resnet18", pretrained=False).eval()
    ran = []
    model.layer3.register_forward_hook(lambda *args: ran.append("layer3"))
    with torch.no_grad():
        forward_intermediates(model, torch.randn(1, 3, 32, 32), indices=[1, 2], intermediates_only=True)
    assert ran == []


def test_out_of_range_image_indices_list_the_stages():
    model = zoo.create("resnet18", pretrained=False).eval()
    with pytest.raises(InvalidArgumentError, match=r"\[7\] out of range; the model has 5 feature stages: indices "
                                                   r"0 to 4 .*1: layer1 \(64 ch, /4\)"):
        forward_intermediates(model, torch.randn(1, 3, 32, 32), indices=[7])


def test_vit_features_only_lays_the_patch_tokens_out_on_the_grid():
    model = zoo.create("vit_b_16", pretrained=False, features_only=True, out_indices=(-1,)).eval()
    assert model.feature_info.channels() == [768] and model.feature_info.reduction() == [16]
    assert len(zoo.get_card("vit_b_16").feature_stages) == 12
    tokens = []
    model.model.encoder.layers[-1].register_forward_hook(lambda module, args, out: tokens.append(out))
    with torch.no_grad():
        (grid,) = model(torch.randn(1, 3, 224, 224))
    assert tuple(grid.shape) == (1, 768, 14, 14)
    patches = tokens[0][0, 1:]  # the class token is left out
    torch.testing.assert_close(grid[0, :, 0, 0], patches[0])
    torch.testing.assert_close(grid[0, :, 0, 13], patches[13])  # row-major: a row of 14 patches
    torch.testing.assert_close(grid[0, :, 2, 5], patches[2 * 14 + 5])


def test_swin_features_only_gives_nchw_maps_at_four_reductions():
    model = zoo.create("swin_t", pretrained=False, features_only=True).eval()
    assert model.feature_info.reduction() == [4, 8, 16, 32]
    assert model.feature_info.module_name() == ["features.1", "features.3", "features.5", "features.7"]
    with torch.no_grad():
        maps = model(torch.randn(1, 3, 224, 224))
        channels_last = model.model.features[:2](torch.randn(1, 3, 224, 224))
    assert [tuple(m.shape) for m in maps] == [(1, 96, 56, 56), (1, 192, 28, 28), (1, 384, 14, 14), (1, 768, 7, 7)]
    assert tuple(channels_last.shape) == (1, 56, 56, 96)  # what the module itself outputs


def test_maxvit_declares_stages():
    assert [s.reduction for s in zoo.get_card("maxvit_t").feature_stages] == [2, 4, 8, 16, 32]


# ---------------------------------------------------------------------------- text


def test_text_layers_use_the_attention_mask_and_end_with_the_last_hidden_states():
    model = zoo.create("bert_encoder", vocab_size=100, **{**TINY, "num_layers": 3}).eval()
    ids, mask = padded_batch(100, 0, lengths=(9, 4))
    inputs = {"input_ids": ids, "attention_mask": mask}
    with torch.no_grad():
        final, layers = forward_intermediates(model, inputs)
        last = forward_features(model, inputs)
        only = forward_intermediates(model, (ids, mask), indices=1, intermediates_only=True)
        alone = forward_intermediates(model, (ids[1:, :4], mask[1:, :4]), intermediates_only=True)
    assert num_intermediates(model) == 3 and len(layers) == 3
    assert all(tuple(h.shape) == (2, 9, 32) for h in layers)
    torch.testing.assert_close(layers[-1], last)
    torch.testing.assert_close(final, last)
    torch.testing.assert_close(only[0], layers[-1])
    for padded, unpadded in zip(layers, alone, strict=True):  # padding does not change the real tokens' states
        torch.testing.assert_close(padded[1, :4], unpadded[0], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(layers[0], layers[1])


def test_text_layer_indices_out_of_range_say_how_many_there_are():
    model = zoo.create("bert_encoder", vocab_size=100, **TINY).eval()
    ids, mask = padded_batch(100, 0)
    with pytest.raises(InvalidArgumentError, match=r"\[2\] out of range; the model has 2 encoder layers"):
        forward_intermediates(model, (ids, mask), indices=[2])


# ---------------------------------------------------------------------------- speech


def test_speech_layers_are_the_encoder_layers_computed_with_the_lengths():
    model = create_tiny("wav2vec2_base_cls", num_classes=3).eval()
    waves, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 5000])
    with torch.no_grad():
        final, layers = forward_intermediates(model, (waves, lengths))
        hidden = forward_features(model, (waves, lengths))
        every, _ = model.extract_features(waves, lengths)
        first = forward_intermediates(model, (waves, lengths), indices=[0], intermediates_only=True)
        unmasked = forward_intermediates(model, waves, indices=[0], intermediates_only=True)
    assert num_intermediates(model) == TINY_ARCH["encoder_num_layers"] == len(layers)
    torch.testing.assert_close(final, hidden)
    for got, want in zip(layers, every, strict=True):
        torch.testing.assert_close(got, want)
    torch.testing.assert_close(first[0], layers[0])
    assert not torch.allclose(unmasked[0][1], layers[0][1])  # the lengths mask the padding


def test_models_without_intermediates_say_so():
    rnn = zoo.create("gru_classifier", vocab_size=100)
    with pytest.raises(InvalidArgumentError, match=r"'gru_classifier' \(TextRNN\) offers no intermediate layers"):
        forward_intermediates(rnn, padded_batch(100, 0))
