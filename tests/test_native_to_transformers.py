"""Native text and speech encoders saved by zoo load in plain transformers, and in zoo again, with equal outputs.

Each model is built by zoo (by name with a tiny shape, or from a tiny transformers checkpoint), its weights are
changed as training would change them, and `zoo.save_pretrained` writes the folder; transformers'
``AutoModelFor<Task>.from_pretrained`` and ``zoo.create("local-dir:...")`` must both compute what the model did.
A model transformers has no class for keeps zoo's names and says why.
"""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("single_thread")

from test_speech_hf import hf_input, tiny_hf, waveforms  # noqa: E402
from test_text_support import padded_batch, single_thread, tiny_hf_model  # noqa: E402, F401

import zoo  # noqa: E402

TEXT_TOL, AUDIO_TOL = 1e-5, 1e-4
TINY_TEXT = {"vocab_size": 120, "hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 48}
AUTO = {"text-classification": "AutoModelForSequenceClassification",
        "token-classification": "AutoModelForTokenClassification", "feature-extraction": "AutoModel",
        "audio-classification": "AutoModelForAudioClassification", "automatic-speech-recognition": "AutoModelForCTC"}


def trained(model):
    """The model with every parameter moved, as fine-tuning moves it (so no file but the saved one fits)."""
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    return model.eval()


def save(model, directory):
    zoo.save_pretrained(model, directory)
    return json.loads((directory / "config.json").read_text())


def text_outputs(model, ids, mask, task):
    if task == "feature-extraction":
        return model.forward_features(ids, mask)
    return model(ids, mask)


def transformers_text_outputs(directory, ids, mask, task):
    loaded = getattr(transformers, AUTO[task]).from_pretrained(directory).eval()
    out = loaded(input_ids=ids, attention_mask=mask)
    return out.last_hidden_state if task == "feature-extraction" else out.logits


def assert_close(ours, theirs, mask, tol):
    if ours.dim() == 3 and mask is not None:  # per token: the real tokens only
        ours, theirs = ours[mask.bool()], theirs[mask.bool()]
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= tol


TEXT_CASES = {  # id: (how the model is built, task, pad id)
    "bert-classification": ("native:bert_classifier", "text-classification", 0),
    "bert-tokens": ("native:bert_token_classifier", "token-classification", 0),
    "bert-features": ("native:bert_encoder", "feature-extraction", 0),
    "distilbert-tokens": ("native:distilbert_token_classifier", "token-classification", 0),
    "distilbert-classification": ("hf:distilbert:ForSequenceClassification", "text-classification", 0),
    "roberta-classification": ("hf:roberta:ForSequenceClassification", "text-classification", 1),
    "xlm-roberta-tokens": ("hf:xlm-roberta:ForTokenClassification", "token-classification", 1),
}


def build_text(spec, task, tmp_path):
    source, _, rest = spec.partition(":")
    if source == "native":
        return zoo.create(rest, num_classes=0 if task == "feature-extraction" else 3, **TINY_TEXT)
    arch, _, kind = rest.partition(":")
    if arch == "xlm-roberta":
        config = transformers.XLMRobertaConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2,
                                               num_attention_heads=4, intermediate_size=48,
                                               max_position_embeddings=66, type_vocab_size=1, num_labels=3)
        torch.manual_seed(0)
        hf = getattr(transformers, "XLMRoberta" + kind)(config)
    else:
        hf = tiny_hf_model(arch, kind)
    hf.save_pretrained(tmp_path / "source")
    return zoo.create(f"local-dir:{tmp_path / 'source'}", task=task)


@pytest.mark.parametrize("case", list(TEXT_CASES))
def test_text_encoder_saved_by_zoo_loads_in_transformers_and_zoo(tmp_path, case):
    spec, task, pad = TEXT_CASES[case]
    model = trained(build_text(spec, task, tmp_path))
    config = save(model, tmp_path / "saved")
    assert "zoo" in config and "interchange_note" not in config
    assert config["model_type"] == case.rsplit("-", 1)[0]
    if task != "feature-extraction":
        assert len(config["id2label"]) == 3
    ids, mask = padded_batch(120, pad)
    with torch.no_grad():
        expected = text_outputs(model, ids, mask, task)
        theirs = transformers_text_outputs(tmp_path / "saved", ids, mask, task)
        again = zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()
        ours_again = text_outputs(again, ids, mask, task)
    assert_close(theirs, expected, mask, TEXT_TOL)
    assert torch.equal(ours_again, expected)
    assert zoo.card_of(again).task == task


def test_labels_are_written_for_transformers(tmp_path):
    model = trained(zoo.create("bert_classifier", num_classes=2, **TINY_TEXT))
    zoo.save_pretrained(model, tmp_path / "saved", labels=["negative", "positive"])
    loaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved")
    assert loaded.config.id2label == {0: "negative", 1: "positive"}
    assert zoo.card_of(zoo.create(f"local-dir:{tmp_path / 'saved'}")).extra["labels"] == ["negative", "positive"]


def test_a_classifier_transformers_has_no_class_for_keeps_zoo_names_and_says_why(tmp_path):
    """A new head on a base RoBERTa has no dense pooler layer; RobertaForSequenceClassification would have one."""
    model = trained(zoo.create("roberta_classifier", num_classes=3, pooler_dense=False, **TINY_TEXT))
    config = save(model, tmp_path / "saved")
    assert "model_type" not in config and "architectures" not in config
    assert "dense layer" in config["interchange_note"]
    assert "dense layer" in (tmp_path / "saved" / "README.md").read_text()
    ids, mask = padded_batch(120, 1)
    with torch.no_grad():
        assert torch.equal(zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()(ids, mask), model(ids, mask))


def test_a_renamed_folder_loads_as_checkpoint_path(tmp_path):
    model = trained(zoo.create("bert_token_classifier", num_classes=3, **TINY_TEXT))
    save(model, tmp_path / "saved")
    again = zoo.create("bert_token_classifier", checkpoint_path=tmp_path / "saved", **TINY_TEXT).eval()
    ids, mask = padded_batch(120, 0)
    with torch.no_grad():
        assert torch.equal(again(ids, mask), model(ids, mask))


def test_a_changed_reader_in_config_is_refused(tmp_path):
    model = zoo.create("bert_token_classifier", num_classes=3, **TINY_TEXT)
    save(model, tmp_path / "saved")
    path = tmp_path / "saved" / "config.json"
    config = json.loads(path.read_text())
    config["zoo"]["weights_key_map"] = "os:system"
    path.write_text(json.dumps(config))
    with pytest.raises(zoo.errors.UntrustedCodeError):
        zoo.create(f"local-dir:{tmp_path / 'saved'}")


SPEECH_CASES = {  # id: (transformers variant, class built from, task, num_classes given to zoo)
    "wav2vec2-ctc": ("wav2vec2", "ForCTC", "automatic-speech-recognition", None),
    "hubert-ctc": ("hubert-stable", "ForCTC", "automatic-speech-recognition", None),
    "wavlm-ctc": ("wavlm", "ForCTC", "automatic-speech-recognition", None),
    "hubert-classification": ("hubert", "ForSequenceClassification", "audio-classification", None),
    "wavlm-classification-new-head": ("wavlm-stable", "Model", "audio-classification", 3),
    "wav2vec2-features": ("wav2vec2", "Model", "feature-extraction", None),
}


@pytest.mark.parametrize("case", list(SPEECH_CASES))
def test_speech_encoder_saved_by_zoo_loads_in_transformers_and_zoo(tmp_path, case):
    variant, kind, task, classes = SPEECH_CASES[case]
    tiny_hf(variant, kind).save_pretrained(tmp_path / "source")
    options = {} if classes is None else {"num_classes": classes}
    model = trained(zoo.create(f"local-dir:{tmp_path / 'source'}", task=task, **options))
    config = save(model, tmp_path / "saved")
    assert "zoo" in config and "interchange_note" not in config
    assert config["model_type"] == case.split("-")[0]
    loaded = getattr(transformers, AUTO[task]).from_pretrained(tmp_path / "saved").eval()
    x = waveforms()
    with torch.no_grad():
        expected = model(x)
        out = loaded(hf_input(loaded, x))
        theirs = out.last_hidden_state if task == "feature-extraction" else out.logits
        ours_again = zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()(x)
    assert_close(theirs, expected, None, AUDIO_TOL)
    assert (ours_again - expected).abs().max().item() <= 1e-6
