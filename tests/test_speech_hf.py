"""Hugging Face wav2vec2 / HuBERT / WavLM checkpoints load into the torchaudio-based models and agree.

Small random `transformers` models are saved with `save_pretrained` (the real layout), then
loaded through the plugin's config converter and key map, directly and via
``zoo.create("local-dir:...")``; encoder outputs must match within 1e-4.
"""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import zoo  # noqa: E402
from zoo.weights.formats import read_state_dict  # noqa: E402
from zoo_speech import keymaps  # noqa: E402
from zoo_speech.encoders import SpeechClassifier, SpeechEncoder, SpeechRecognizer  # noqa: E402

TOL = 1e-4
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
            conv_dim=(32, 32, 32), conv_kernel=(10, 3, 3), conv_stride=(5, 2, 2),
            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, vocab_size=12, pad_token_id=0)
# (transformers model_type prefix, config extras): post-LN + group-norm, and pre-LN + layer-norm extractors
VARIANTS = {
    "wav2vec2": ("Wav2Vec2", {}),
    "wav2vec2-stable": ("Wav2Vec2", {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}),
    "hubert": ("Hubert", {}),
    "hubert-stable": ("Hubert", {"feat_extract_norm": "layer", "do_stable_layer_norm": True}),
    "wavlm": ("WavLM", {"num_buckets": 16, "max_bucket_distance": 40}),
    "wavlm-stable": ("WavLM", {"feat_extract_norm": "layer", "do_stable_layer_norm": True, "num_buckets": 16,
                               "max_bucket_distance": 40}),
}


def tiny_hf(variant: str, head: str = "Model", **extra):
    prefix, options = VARIANTS[variant]
    config = getattr(transformers, f"{prefix}Config")(**TINY, **options, **extra)
    torch.manual_seed(0)
    model = getattr(transformers, f"{prefix}{head}")(config).eval()
    with torch.no_grad():  # random non-trivial norms and biases, so a wrong mapping cannot pass
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(torch.randn_like(param) * 0.1)
    return model


def waveforms(batch: int = 2, samples: int = 4000):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(batch, samples, generator=generator) * 0.3


def hf_input(model, x):
    """What the transformers feature extractor does for layer-norm models: standardize each clip."""
    if model.config.feat_extract_norm == "layer":
        return (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    return x


def saved(tmp_path, model, name="ckpt"):
    model.save_pretrained(tmp_path / name)
    return tmp_path / name


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_key_map_and_config_converter_load_strict_and_match(tmp_path, variant):
    hf = tiny_hf(variant)
    directory = saved(tmp_path, hf)
    config = json.loads((directory / "config.json").read_text())
    kwargs = keymaps.hf_config_to_encoder_kwargs(config)
    assert kwargs["normalize_waveform"] == variant.endswith("stable")
    ours = SpeechEncoder(**kwargs).eval()
    state = keymaps.hf_state(read_state_dict(directory / "model.safetensors"))
    ours.load_state_dict(state, strict=True)
    x = waveforms()
    with torch.no_grad():
        expected = hf(hf_input(hf, x)).last_hidden_state
        got = ours(x)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= TOL


@pytest.mark.parametrize("variant", ["wav2vec2", "hubert-stable", "wavlm"])
def test_feature_extraction_checkpoint_through_local_dir(tmp_path, variant):
    hf = tiny_hf(variant)
    directory = saved(tmp_path, hf)
    model = zoo.create(f"local-dir:{directory}").eval()
    card = zoo.card_of(model)
    assert card.task == "feature-extraction" and card.modality == "audio"
    assert card.extra["weights_location"] == str(directory)
    x = waveforms()
    with torch.no_grad():
        expected = hf(hf_input(hf, x)).last_hidden_state
        got = model(x)
    assert (got - expected).abs().max().item() <= TOL


def test_padded_batch_matches_transformers_attention_mask(tmp_path):
    hf = tiny_hf("wav2vec2-stable")  # layer-norm extractor: padding does not leak through a GroupNorm
    model = zoo.create(f"local-dir:{saved(tmp_path, hf)}").eval()
    x = waveforms(2, 4000)
    lengths = torch.tensor([4000, 2600])
    x[1, 2600:] = 0.0
    mask = torch.arange(4000)[None, :] < lengths[:, None]
    ref_in = torch.zeros_like(x)
    for i, n in enumerate(lengths.tolist()):
        ref_in[i, :n] = hf_input(hf, x[i:i + 1, :n])[0]
    with torch.no_grad():
        expected = hf(ref_in, attention_mask=mask.long()).last_hidden_state
        got = model(x, lengths)
        got_from_mask = model(x, mask)
    frames = model.frame_lengths(lengths)
    for i, n in enumerate(frames.tolist()):
        assert (got[i, :n] - expected[i, :n]).abs().max().item() <= TOL
    assert torch.equal(got, got_from_mask)


def test_ctc_checkpoint_loads_and_decodes_with_its_vocab(tmp_path):
    hf = tiny_hf("wav2vec2", "ForCTC")
    directory = saved(tmp_path, hf)
    vocab = ["<pad>", "<s>", "</s>", "<unk>", "|", "A", "B", "C", "D", "E", "F", "G"]
    (directory / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(vocab)}))
    model = zoo.create(f"local-dir:{directory}").eval()  # Wav2Vec2ForCTC: speech recognition by default
    assert isinstance(model, SpeechRecognizer) and zoo.card_of(model).task == "automatic-speech-recognition"
    x = waveforms()
    with torch.no_grad():
        expected = hf(x).logits
        got = model(x)
    assert (got - expected).abs().max().item() <= TOL
    texts = model.transcribe(x)
    assert len(texts) == 2 and all(set(t) <= set("ABCDEFG ") for t in texts)
    from zoo_speech.ctc import greedy_decode

    assert texts == greedy_decode(expected, None, vocab, blank=0)
    encoder = zoo.create(f"local-dir:{directory}", task="feature-extraction").eval()  # its CTC head left out
    with torch.no_grad():
        assert (encoder(x) - hf.wav2vec2(x).last_hidden_state).abs().max().item() <= TOL


def test_sequence_classification_checkpoint_keeps_its_head(tmp_path):
    hf = tiny_hf("hubert", "ForSequenceClassification", num_labels=3, classifier_proj_size=8)
    directory = saved(tmp_path, hf)
    model = zoo.create(f"local-dir:{directory}", task="audio-classification").eval()
    assert isinstance(model, SpeechClassifier) and zoo.card_of(model).num_classes == 3
    x = waveforms()
    with torch.no_grad():
        expected = hf(x).logits
        got = model(x)
    assert (got - expected).abs().max().item() <= TOL


def test_pretraining_checkpoint_drops_quantizer_and_keeps_encoder(tmp_path):
    hf = tiny_hf("wav2vec2", "ForPreTraining")
    directory = saved(tmp_path, hf)
    model = zoo.create(f"local-dir:{directory}").eval()
    x = waveforms()
    with torch.no_grad():
        expected = hf.wav2vec2(x).last_hidden_state
        got = model(x)
    assert (got - expected).abs().max().item() <= TOL


def test_unsupported_checkpoint_options_fail_clearly():
    with pytest.raises(zoo.WeightsError, match="add_adapter"):
        keymaps.hf_config_to_encoder_kwargs({**transformers.Wav2Vec2Config(**TINY).to_dict(), "add_adapter": True})
    with pytest.raises(zoo.WeightsError, match="unexpected tensor"):
        keymaps.hf_state({"adapter.layers.0.conv.weight": torch.zeros(1)})


def test_card_hub_weights_load_from_the_hugging_face_cache_offline(tmp_path, monkeypatch):
    """``wav2vec2_base_ctc.hf_960h``: pytorch_model.bin from the Hub cache, 32 symbols down to torchaudio's 29."""
    from test_speech_support import TINY_ARCH, create_tiny, tiny_card

    arch = TINY_ARCH["extractor_conv_layer_config"]
    config = transformers.Wav2Vec2Config(**{**TINY, "vocab_size": 32, "conv_dim": [c[0] for c in arch],
                                            "conv_kernel": [c[1] for c in arch], "conv_stride": [c[2] for c in arch]})
    torch.manual_seed(0)
    hf = transformers.Wav2Vec2ForCTC(config).eval()
    card = tiny_card("wav2vec2_base_ctc")
    weights = card.weights["hf_960h"]
    assert weights.source == "hf-hub:facebook/wav2vec2-base-960h" and weights.filename == "pytorch_model.bin"
    repo = tmp_path / "hub" / "models--facebook--wav2vec2-base-960h"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    config.to_json_file(snapshot / "config.json")
    torch.save(hf.state_dict(), snapshot / "pytorch_model.bin")  # the pickle those Hub repos hold
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = create_tiny("wav2vec2_base_ctc", card=card, tag="hf_960h", pretrained=True).eval()
    x = waveforms()
    with torch.no_grad():
        expected = hf(x).logits[..., [0] + list(range(4, 32))]
        got = model(x)
    assert got.shape[-1] == 29 and (got - expected).abs().max().item() <= TOL
    assert zoo.card_of(model).extra["weights_location"] == str(snapshot)


def test_saved_speech_models_reload_with_weights_labels_and_buffers(tmp_path):
    """save_pretrained -> local-dir: a fine-tuned classifier, a recognizer with its vocab, the KWS front end."""
    from test_speech_support import create_tiny

    hf = tiny_hf("wavlm", "ForCTC")
    directory = saved(tmp_path, hf)
    vocab = ["<pad>", "<s>", "</s>", "<unk>", "|", "A", "B", "C", "D", "E", "F", "G"]
    (directory / "vocab.json").write_text(json.dumps({s: i for i, s in enumerate(vocab)}))
    asr = zoo.create(f"local-dir:{directory}", task="automatic-speech-recognition").eval()
    x = waveforms()
    texts = asr.transcribe(x)
    models = {"asr": asr, "cls": create_tiny("hubert_large_cls", num_classes=4).eval(),
              "kws": zoo.create("kws_cnn_s", num_classes=3).eval()}
    for name, model in models.items():
        zoo.save_pretrained(model, tmp_path / name)
        again = zoo.create(f"local-dir:{tmp_path / name}").eval()
        clips = x if name != "kws" else torch.randn(2, 16000)
        with torch.no_grad():
            assert torch.equal(model(clips), again(clips)), name
        assert zoo.card_of(again).task == zoo.card_of(model).task
    assert zoo.create(f"local-dir:{tmp_path / 'asr'}").eval().transcribe(x) == texts
