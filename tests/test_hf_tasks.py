"""Transformers checkpoints load as the task their `architectures` name, with their trained head and labels;
speech recognition goes by the Hub's task name, automatic-speech-recognition, and the old name still works."""
from __future__ import annotations

import json
import warnings

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("single_thread")

from huggingface_hub import ModelCard  # noqa: E402
from test_speech_hf import saved, tiny_hf, waveforms  # noqa: E402
from test_text_support import padded_batch, single_thread, tiny_hf_model  # noqa: E402, F401

import zoo  # noqa: E402
from zoo.cards import card_labels  # noqa: E402

TOL = 1e-5
LABELS = {0: "negative", 1: "neutral", 2: "positive"}
ASR = "automatic-speech-recognition"


def _max_difference(ours, theirs, mask=None):
    if mask is not None and ours.dim() == 3:  # per-token outputs: the real tokens only
        ours, theirs = ours[mask.bool()], theirs[mask.bool()]
    assert ours.shape == theirs.shape
    return (ours - theirs).abs().max().item()


@pytest.mark.parametrize(("arch", "kind", "task"), [
    ("bert", "ForSequenceClassification", "text-classification"),
    ("roberta", "ForSequenceClassification", "text-classification"),
    ("distilbert", "ForTokenClassification", "token-classification"),
])
def test_text_checkpoint_loads_as_its_trained_task_with_head_and_labels(tmp_path, arch, kind, task):
    hf = tiny_hf_model(arch, kind, id2label=LABELS, label2id={v: k for k, v in LABELS.items()})
    hf.save_pretrained(tmp_path / "ckpt")
    model = zoo.create(f"local-dir:{tmp_path / 'ckpt'}").eval()  # no task=: the config's architectures decide
    card = zoo.card_of(model)
    assert card.task == task and card.num_classes == 3
    assert card_labels(card) == ["negative", "neutral", "positive"]
    assert list(card.layer_groups) == ["embeddings", "layers.0", "layers.1", "pooler", "head"]  # its own depth
    ids, mask = padded_batch(120, 1 if arch == "roberta" else 0)
    with torch.no_grad():
        expected = hf(input_ids=ids, attention_mask=mask).logits
        assert _max_difference(model(ids, mask), expected, mask) <= TOL


def test_audio_classification_checkpoint_keeps_its_head_and_labels(tmp_path):
    hf = tiny_hf("hubert", "ForSequenceClassification", num_labels=3, classifier_proj_size=8, id2label=LABELS,
                 label2id={v: k for k, v in LABELS.items()})
    model = zoo.create(f"local-dir:{saved(tmp_path, hf)}").eval()
    card = zoo.card_of(model)
    assert card.task == "audio-classification" and card_labels(card) == ["negative", "neutral", "positive"]
    layers = [group for group in card.layer_groups if group.startswith("encoder.transformer.layers.")]
    assert layers == ["encoder.transformer.layers.0", "encoder.transformer.layers.1"]  # its own depth
    x = waveforms()
    with torch.no_grad():
        assert _max_difference(model(x), hf(x).logits) <= TOL


def test_ctc_checkpoint_loads_as_automatic_speech_recognition(tmp_path):
    hf = tiny_hf("wav2vec2", "ForCTC")
    model = zoo.create(f"local-dir:{saved(tmp_path, hf)}").eval()
    assert zoo.card_of(model).task == ASR
    x = waveforms()
    with torch.no_grad():
        assert _max_difference(model(x), hf(x).logits) <= TOL


def test_task_argument_still_overrides_the_architectures(tmp_path):
    hf = tiny_hf_model("bert", "ForSequenceClassification", id2label=LABELS)
    hf.save_pretrained(tmp_path / "ckpt")
    model = zoo.create(f"local-dir:{tmp_path / 'ckpt'}", task="feature-extraction").eval()
    assert zoo.card_of(model).task == "feature-extraction"
    ids, mask = padded_batch(120, 0)
    with torch.no_grad():
        hidden = hf.bert(input_ids=ids, attention_mask=mask).last_hidden_state
        assert _max_difference(model.forward_features(ids, mask), hidden, mask) <= TOL


def test_checkpoint_without_a_task_head_loads_as_features(tmp_path):
    hf = tiny_hf_model("bert", "ForMaskedLM")
    hf.save_pretrained(tmp_path / "ckpt")
    assert zoo.card_of(zoo.create(f"local-dir:{tmp_path / 'ckpt'}")).task == "feature-extraction"


def test_malformed_architectures_field_is_a_clear_error(tmp_path):
    hf = tiny_hf_model("bert", "Model")
    hf.save_pretrained(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({**config, "architectures": "BertModel"}))
    with pytest.raises(zoo.WeightsError, match="'architectures' must be a list"):
        zoo.create(f"local-dir:{tmp_path / 'ckpt'}")


# ---------------------------------------------------------------------------- automatic-speech-recognition


def test_speech_recognition_cards_use_the_hub_task_name():
    names = zoo.list_models(task=ASR)
    speech = [n for n in names if zoo.get_card(n).family in ("wav2vec2", "hubert", "wavlm")]
    assert "wav2vec2_base_ctc" in names and speech and all(name.endswith("_ctc") for name in speech)
    assert "transformers/wav2vec2-base-960h" in names  # the transformers family's checkpoints use it too
    assert zoo.get_card("hubert_large_ctc").task == ASR


def test_old_task_name_still_picks_speech_recognition_with_a_deprecation_warning(tmp_path):
    directory = saved(tmp_path, tiny_hf("wav2vec2", "ForCTC"))
    with pytest.warns(DeprecationWarning, match="'automatic-speech-recognition'") as caught:
        model = zoo.create(f"local-dir:{directory}", task="speech-recognition")
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert zoo.card_of(model).task == ASR


def test_saved_recognizer_readme_and_old_folders_use_the_hub_task_name(tmp_path):
    directory = saved(tmp_path, tiny_hf("wav2vec2", "ForCTC"))
    out = zoo.save_pretrained(zoo.create(f"local-dir:{directory}"), tmp_path / "asr")
    assert ModelCard.load(out / "README.md").data.pipeline_tag == ASR
    config = json.loads((out / "config.json").read_text())
    config["card"]["task"] = config["task"] = "speech-recognition"  # as zoo saved it before the rename
    (out / "config.json").write_text(json.dumps(config))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a folder's old task name is data, not the user's spelling: no warning
        again = zoo.create(f"local-dir:{out}")
    assert zoo.card_of(again).task == ASR
    assert ModelCard.load(zoo.save_pretrained(again, tmp_path / "again") / "README.md").data.pipeline_tag == ASR


def test_the_old_speech_task_name_lists_the_same_models_with_a_warning():
    with pytest.warns(DeprecationWarning, match="automatic-speech-recognition") as caught:
        old = zoo.list_models(task="speech-recognition")
    assert caught[0].filename == __file__  # points at the caller's line
    assert old == zoo.list_models(task="automatic-speech-recognition") and "wav2vec2_base_ctc" in old
