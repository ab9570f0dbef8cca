"""zoo.features' helpers on every family: unpooled features, pooled features, logits from features, the head."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("single_thread")

from test_speech_support import create_tiny  # noqa: E402
from test_text_support import TINY, padded_batch, single_thread  # noqa: E402, F401

import zoo  # noqa: E402
from zoo import features  # noqa: E402
from zoo.errors import InvalidArgumentError  # noqa: E402

WAVES = torch.randn(2, 8000) * 0.1
LENGTHS = torch.tensor([8000, 5000])


def _round_trip(model, inputs, call):
    with torch.no_grad():
        pooled = features.forward_pooled(model, inputs)
        logits = features.forward_head(model, pooled)
        expected = call()
    torch.testing.assert_close(logits, expected)
    return pooled


def test_image_features_pooled_and_head_give_the_models_logits():
    model = zoo.create("resnet18", pretrained=False).eval()
    x = torch.randn(2, 3, 64, 64)
    pooled = _round_trip(model, x, lambda: model(x))
    assert tuple(pooled.shape) == (2, 512)
    with torch.no_grad():
        unpooled = features.forward_features(model, x)
    assert tuple(unpooled.shape) == (2, 512, 2, 2)
    torch.testing.assert_close(unpooled.mean(dim=(2, 3)), pooled)  # resnet's head reads the averaged last map


def test_forward_pooled_stops_at_the_head():
    model = zoo.create("resnet18", pretrained=False).eval()
    calls = []
    model.fc.register_forward_hook(lambda *args: calls.append("fc"))
    with torch.no_grad():
        features.forward_pooled(model, torch.randn(1, 3, 32, 32))
    assert calls == []


def test_text_features_pooled_and_head_give_the_models_logits():
    model = zoo.create("bert_classifier", vocab_size=100, num_classes=3, **TINY).eval()
    ids, mask = padded_batch(100, 0)
    inputs = {"input_ids": ids, "attention_mask": mask}
    pooled = _round_trip(model, inputs, lambda: model(ids, mask))
    assert tuple(pooled.shape) == (3, 32)
    with torch.no_grad():
        hidden = features.forward_features(model, inputs)
        as_tuple = features.forward_features(model, (ids, mask))
    assert tuple(hidden.shape) == (3, 9, 32)
    torch.testing.assert_close(hidden, as_tuple)


def test_speech_features_pooled_and_head_give_the_models_logits():
    model = create_tiny("wav2vec2_base_cls", num_classes=4).eval()
    pooled = _round_trip(model, (WAVES, LENGTHS), lambda: model(WAVES, LENGTHS))
    assert tuple(pooled.shape) == (2, 32)
    with torch.no_grad():
        hidden = features.forward_features(model, (WAVES, LENGTHS))
    assert hidden.shape[0] == 2 and hidden.shape[2] == 32 and hidden.shape[1] == 24  # 8000 samples -> 24 frames


def test_a_speech_encoder_without_head_pools_over_valid_frames():
    model = create_tiny("wav2vec2_base").eval()
    assert zoo.card_of(model).head is None
    with torch.no_grad():
        pooled = features.forward_pooled(model, (WAVES, LENGTHS))
        hidden = features.forward_features(model, (WAVES, LENGTHS))
        valid = int(model.frame_lengths(LENGTHS)[1])
    assert tuple(pooled.shape) == (2, 32)
    torch.testing.assert_close(pooled[1], hidden[1, :valid].mean(dim=0))
    with pytest.raises(zoo.ZooError, match="declares no head"):
        features.forward_head(model, pooled)


def test_remove_head_makes_the_model_return_its_pooled_features():
    model = zoo.create("resnet18", pretrained=False).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        pooled = features.forward_pooled(model, x)
    assert features.remove_head(model) is model
    assert zoo.card_of(model).num_classes == 0
    with torch.no_grad():
        torch.testing.assert_close(model(x), pooled)
        torch.testing.assert_close(features.forward_pooled(model, x), pooled)  # the head's input: the output
    new = features.reset_head(model, 7)
    assert new.out_features == 7 and model(x).shape == (1, 7)


def test_models_without_unpooled_features_say_what_they_offer():
    rnn = zoo.create("lstm_classifier", vocab_size=100).eval()
    ids, mask = padded_batch(100, 0)
    with torch.no_grad():
        pooled = features.forward_pooled(rnn, (ids, mask))
        torch.testing.assert_close(features.forward_head(rnn, pooled), rnn(ids, mask))
    with pytest.raises(InvalidArgumentError, match=r"'lstm_classifier' \(TextRNN\) offers no unpooled features.*"
                                                    r"forward_pooled"):
        features.forward_features(rnn, (ids, mask))
    kws = zoo.create("kws_cnn_s", num_classes=3).eval()
    with pytest.raises(InvalidArgumentError, match="'kws_cnn_s' .*offers no intermediate layers"):
        features.forward_intermediates(kws, torch.randn(1, 16000))


def test_features_only_models_have_no_head_to_apply():
    model = zoo.create("resnet18", pretrained=False, features_only=True).eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert tuple(features.forward_features(model, x).shape) == (1, 512, 1, 1)
    with pytest.raises(InvalidArgumentError, match="features_only"):
        features.forward_pooled(model, x)
    with pytest.raises(InvalidArgumentError, match="features_only"):
        features.forward_head(model, torch.zeros(1, 512))


def test_zoo_features_is_reachable_from_zoo():
    assert zoo.features.forward_intermediates is features.forward_intermediates
    from zoo.finetune import reset_head

    assert features.reset_head is reset_head
