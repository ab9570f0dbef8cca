"""cached_layer_features: several intermediate layers pooled and cached in one backbone pass."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("single_thread")

from test_speech_support import create_tiny  # noqa: E402
from test_text_support import TINY, padded_batch, single_thread  # noqa: E402, F401

import zoo  # noqa: E402
from zoo.errors import InvalidArgumentError  # noqa: E402
from zoo.features import forward_intermediates  # noqa: E402
from zoo.finetune.feature_cache import cached_features, cached_layer_features  # noqa: E402

IMAGES = torch.randn(6, 3, 32, 32)
LABELS = torch.arange(6)


class Exploding:
    def __iter__(self):
        raise AssertionError("the cache should have answered without reading the data")


def _counting(module):
    calls = []
    module.register_forward_pre_hook(lambda *args: calls.append(1))
    return calls


def _image_batches():
    return [(IMAGES[:4], LABELS[:4]), (IMAGES[4:], LABELS[4:])]


def test_several_image_layers_come_from_one_backbone_pass_and_are_read_back(tmp_path):
    model = zoo.create("resnet18", pretrained=False)
    calls = _counting(model.conv1)
    first = cached_layer_features(model, _image_batches(), layers=[1, -1, 3], data="images", cache_dir=tmp_path)
    assert len(calls) == 2  # one pass per batch, whatever the number of layers
    assert not first.hit and sorted(first.features) == [1, 3, 4] and len(first) == 6
    assert [tuple(first.features[i].shape) for i in (1, 3, 4)] == [(6, 64), (6, 256), (6, 512)]
    torch.testing.assert_close(first.labels, LABELS)
    model.eval()
    with torch.no_grad():
        maps = forward_intermediates(model, IMAGES, indices=[1, 3, 4], intermediates_only=True)
    for index, fmap in zip((1, 3, 4), maps, strict=True):  # each layer: its map averaged over pixels
        torch.testing.assert_close(first.features[index], fmap.mean(dim=(2, 3)))

    again = cached_layer_features(model, Exploding(), layers=[1, 4, 3], data="images", cache_dir=tmp_path)
    assert again.hit and again.path == first.path
    for index in (1, 3, 4):
        torch.testing.assert_close(again.features[index], first.features[index])
    assert len(calls) == 3  # the check above ran the model once more; reading the cache did not


def test_the_layer_choice_is_part_of_the_key(tmp_path):
    model = zoo.create("resnet18", pretrained=False)
    one = cached_layer_features(model, _image_batches(), layers=[2], data="images", cache_dir=tmp_path)
    two = cached_layer_features(model, _image_batches(), layers=[2, 3], data="images", cache_dir=tmp_path)
    last = cached_layer_features(model, _image_batches(), layers=1, data="images", cache_dir=tmp_path)
    assert not two.hit and not last.hit and len({one.path, two.path, last.path}) == 3
    assert sorted(last.features) == [4]
    head_input = cached_features(model, _image_batches(), data="images", cache_dir=tmp_path)
    assert head_input.path not in (one.path, two.path, last.path)
    torch.testing.assert_close(head_input.features, last.features[4])  # resnet's head reads the averaged map


def test_text_layers_are_averaged_over_real_tokens(tmp_path):
    model = zoo.create("bert_encoder", vocab_size=100, **{**TINY, "num_layers": 3})
    ids, mask = padded_batch(100, 0, lengths=(9, 4, 6))
    calls = _counting(model.embeddings)
    batches = [({"input_ids": ids, "attention_mask": mask}, torch.tensor([0, 1, 0]))]
    result = cached_layer_features(model, batches, layers=[0, 2], data="texts", cache_dir=tmp_path)
    assert len(calls) == 1
    model.eval()
    with torch.no_grad():
        hidden = forward_intermediates(model, (ids, mask), indices=[0, 2], intermediates_only=True)
    for index, states in zip((0, 2), hidden, strict=True):
        expected = torch.stack([states[row, :n].mean(dim=0) for row, n in enumerate((9, 4, 6))])
        torch.testing.assert_close(result.features[index], expected)


def test_speech_layers_are_averaged_over_valid_frames(tmp_path):
    model = create_tiny("wav2vec2_base_cls", num_classes=2)
    waves, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 5000])
    result = cached_layer_features(model, [((waves, lengths), torch.tensor([1, 0]))], layers=None, data="clips",
                                   cache_dir=tmp_path)
    assert sorted(result.features) == [0, 1]
    model.eval()
    with torch.no_grad():
        hidden = forward_intermediates(model, (waves, lengths), intermediates_only=True)
        frames = model.frame_lengths(lengths)
    for index, states in enumerate(hidden):
        expected = torch.stack([states[row, :n].mean(dim=0) for row, n in enumerate(frames.tolist())])
        torch.testing.assert_close(result.features[index], expected)


def test_bad_layers_are_errors_before_any_pass(tmp_path):
    model = zoo.create("resnet18", pretrained=False)
    with pytest.raises(InvalidArgumentError, match=r"\[9\] out of range; the model has 5 layers"):
        cached_layer_features(model, Exploding(), layers=[9], data="images", cache_dir=tmp_path)
    rnn = zoo.create("lstm_classifier", vocab_size=100)
    with pytest.raises(InvalidArgumentError, match="offers no intermediate layers"):
        cached_layer_features(rnn, Exploding(), layers=[0], data="texts", cache_dir=tmp_path)
