"""`zoo.pipeline`: one call from raw inputs (files, folders, PIL images, tensors, texts, waveforms) to results shaped
like Hugging Face pipelines', for image, text and audio classification, speech recognition and feature extraction."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soundfile
import torch
import trainer_models as tm
from PIL import Image
from torch import nn

import zoo
from zoo.cli import main
from zoo.data.text import tokenizer_for
from zoo.errors import InvalidArgumentError

CLASSES = ["class_0", "class_1", "class_2"]
TINY_WAV2VEC2 = {"encoder_embed_dim": 32, "encoder_num_heads": 2, "encoder_ff_interm_features": 64,
                 "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 2,
                 "extractor_conv_layer_config": [(16, 10, 5), (16, 3, 2), (16, 2, 2)]}


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


class TinyTokenTagger(nn.Module):
    """One label per token: embeddings, then a Linear head, over `[batch, tokens]`."""

    def __init__(self, vocab_size: int = 200, num_classes: int = 3):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, 8)
        self.head = nn.Linear(8, num_classes)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return self.head(self.embed(input_ids))


def _scores(result):
    return [(p["label"], round(p["score"], 5)) for p in result]


def test_pipeline_is_exported_lazily_and_is_a_function():
    assert "pipeline" in zoo.__all__
    assert callable(zoo.pipeline) and zoo.pipeline.__name__ == "pipeline"


def test_image_classification_from_paths_folders_pil_images_arrays_and_tensors(tmp_path):
    folder = zoo.save_pretrained(zoo.create("trainer_conv"), tmp_path / "model", labels=CLASSES)
    photos = tm.write_image_folder(tmp_path / "photos", classes=2, per_class=2)
    path = photos / "class_0" / "0.png"
    classify = zoo.pipeline(str(folder))

    one = classify(str(path))
    assert [p["label"] for p in one] and {p["label"] for p in one} == set(CLASSES)  # top_k 5 > 3 classes: all 3
    assert [p["score"] for p in one] == sorted((p["score"] for p in one), reverse=True)
    assert sum(p["score"] for p in one) == pytest.approx(1.0, abs=1e-5)

    with Image.open(path) as image:
        image.load()
        pil = image.copy()
    array = np.array(pil)
    tensor = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    many = classify([path, pil, array, tensor], top_k=2, batch_size=3)
    assert len(many) == 4 and all(len(result) == 2 for result in many)
    assert _scores(many[0]) == _scores(many[1]) == _scores(one[:2])  # PIL images: the card's preprocessing exactly
    for result in many[2:]:  # arrays and tensors are resized as tensors: nearly the same
        assert [p["label"] for p in result] == [p["label"] for p in one[:2]]
        assert [p["score"] for p in result] == pytest.approx([p["score"] for p in one[:2]], abs=0.02)

    from_folder = classify(str(photos), batch_size=1)  # a folder is a list: its image files, sorted
    assert len(from_folder) == 4 and _scores(from_folder[0]) == _scores(one)


def test_text_classification_single_and_list(tmp_path):
    model = zoo.create("trainer_text")
    tokenizer_for(model, train_texts=["good fun", "great film", "bad plot", "dull film"])
    folder = zoo.save_pretrained(model, tmp_path / "model", labels=["neg", "pos"])
    classify = zoo.pipeline(folder.as_posix(), top_k=1)

    one = classify("great film")
    assert len(one) == 1 and one[0]["label"] in {"neg", "pos"} and 0 < one[0]["score"] <= 1
    many = classify(["great film", "a much longer text about a dull plot"], top_k=2)
    assert len(many) == 2 and _scores(many[0])[0] == _scores(one)[0]
    with pytest.raises(InvalidArgumentError, match="takes strings"):
        classify([3])


def test_audio_classification_from_files_waveforms_and_hugging_face_dicts(tmp_path):
    classify = zoo.pipeline(zoo.create("trainer_audio"))
    rng = np.random.default_rng(0)
    clip = rng.normal(0, 0.1, 16000).astype("float32")
    path = tmp_path / "clip.flac"
    soundfile.write(path, clip, 16000)

    one = classify(str(path))
    assert [p["label"] for p in one] in (["0", "1"], ["1", "0"])  # no labels in the card: class indices
    same = classify([clip, {"raw": clip, "sampling_rate": 16000}, (torch.from_numpy(clip), 16000)],
                    sampling_rate=16000)
    assert all(_scores(result) == _scores(one) for result in same)  # resampled to the card's 8 kHz alike
    assert _scores(classify({"array": clip, "sampling_rate": 16000})) == _scores(one)


def test_feature_extraction_returns_one_numpy_array_per_input():
    card = dataclasses.replace(tm.TEXT_CARD, name="pipeline_embedder", task="feature-extraction")
    zoo.default_registry().register(card)
    model = zoo.create("pipeline_embedder")
    tokenizer_for(model, train_texts=["good fun", "great film"])
    embed = zoo.pipeline(model)

    one = embed("good fun")
    assert isinstance(one, np.ndarray) and one.shape == (2,)
    many = embed(["good fun", "great film and more"])
    assert [a.shape for a in many] == [(2,), (2,)] and np.allclose(many[0], one, atol=1e-6)


def test_token_classification_gives_each_tokens_entity_as_transformers_does():
    card = dataclasses.replace(tm.TEXT_CARD, name="pipeline_tagger", task="token-classification",
                               builder="test_pipeline:TinyTokenTagger", defaults={"vocab_size": 200, "num_classes": 3},
                               layer_groups=["embed", "head"])
    zoo.default_registry().register(card)
    model = zoo.create("pipeline_tagger")
    tokenizer_for(model, train_texts=["anna lives in paris", "bob works at acme"])
    with torch.no_grad():
        model.head.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))  # every token: class 1
    tag = zoo.pipeline(model)

    entities = tag("anna lives in paris")
    assert [(e["entity"], e["word"], e["index"]) for e in entities] == [
        ("1", "anna", 0), ("1", "lives", 1), ("1", "in", 2), ("1", "paris", 3)]
    assert [(e["start"], e["end"]) for e in entities] == [(0, 4), (5, 10), (11, 13), (14, 19)]
    batch = tag(["bob", "anna lives in paris"])
    assert len(batch[0]) == 1 and [e["word"] for e in batch[1]] == ["anna", "lives", "in", "paris"]


def test_speech_recognition_with_a_built_in_ctc_card_gives_text(tmp_path):
    labels = ["<pad>", "a", "b", "|"]
    model = zoo.create("wav2vec2_base_ctc", labels=labels, num_classes=4, **TINY_WAV2VEC2)  # random, tiny weights
    transcribe = zoo.pipeline(model, batch_size=2)

    one = transcribe(torch.randn(16000, generator=torch.Generator().manual_seed(0)))
    assert set(one) == {"text"} and set(one["text"]) <= {"a", "b", " "}
    many = transcribe([np.zeros(8000, dtype="float32"), {"raw": np.ones(44100, dtype="float32") * 0.1,
                                                           "sampling_rate": 44100}, np.zeros(4000, dtype="float32")])
    assert len(many) == 3 and all(isinstance(r["text"], str) for r in many)

    embed = zoo.pipeline(zoo.create("wav2vec2_base", **TINY_WAV2VEC2))
    frames = embed([np.zeros(16000, dtype="float32"), np.zeros(8000, dtype="float32")])
    assert [a.shape for a in frames] == [(799, 32), (399, 32)]  # each clip's own frames, no padding


def test_zoo_predict_prints_a_speech_recognizers_text(tmp_path, capsys):
    model = zoo.create("wav2vec2_base_ctc", labels=["<pad>", "a", "b", "|"], num_classes=4, **TINY_WAV2VEC2)
    folder = zoo.save_pretrained(model, tmp_path / "asr")
    path = tmp_path / "clip.wav"
    soundfile.write(path, np.random.default_rng(0).normal(0, 0.1, 16000).astype("float32"), 16000)

    assert main(["predict", str(folder), str(path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["input"] == str(path) and isinstance(rows[0]["text"], str) and "predictions" not in rows[0]
    expected = zoo.pipeline(str(folder))(str(path))["text"]
    assert rows[0]["text"] == expected


def test_wrong_options_are_clear_errors(tmp_path):
    classify = zoo.pipeline(zoo.create("trainer_conv"))
    with pytest.raises(InvalidArgumentError, match="top_k"):
        classify(np.zeros((16, 16, 3), dtype="uint8"), top_k=0)
    with pytest.raises(InvalidArgumentError, match="empty list"):
        classify([])
    with pytest.raises(InvalidArgumentError, match="an image input"):
        classify([1.5])
