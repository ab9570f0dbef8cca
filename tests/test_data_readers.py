"""zoo.data readers: image folders, text CSV/JSONL, audio folders, and their errors on bad input."""
from __future__ import annotations

import json

import pytest
import torch
import trainer_models as tm

import zoo
import zoo.data
from zoo.errors import DataError
from zoo.finetune import fit

QUIET = {"progress": False, "verbose": False}


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


# ---------------------------------------------------------------------------- image folders


def test_image_folder_uses_the_cards_preprocessing(tmp_path):
    root = tm.write_image_folder(tmp_path / "train", per_class=3, size=30)
    model = zoo.create("trainer_conv", num_classes=3)
    train = zoo.data.dataset_for(model, root, train=True)
    val = zoo.data.dataset_for(model, root, classes=train.classes)
    assert train.classes == ["class_0", "class_1", "class_2"] and len(train) == 9
    image, label = val[4]
    assert image.shape == (3, 16, 16) and label == 1          # the card's 16x16 input
    assert train.augments and not val.augments
    assert torch.equal(val[4][0], val[4][0])                  # evaluation: deterministic
    assert image.mean().abs() < 3                             # normalized with the card's mean and std


def test_image_folder_errors_name_the_problem(tmp_path):
    model = zoo.create("trainer_conv", num_classes=3)
    with pytest.raises(DataError, match="does not exist"):
        zoo.data.dataset_for(model, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class sub-folders"):
        zoo.data.dataset_for(model, tmp_path / "empty")
    (tmp_path / "empty" / "cats").mkdir()
    (tmp_path / "empty" / "cats" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"class folder .*cats has no images"):
        zoo.data.dataset_for(model, tmp_path / "empty")
    root = tm.write_image_folder(tmp_path / "more", per_class=2)
    with pytest.raises(DataError, match=r"not trained on: \['class_2'\]"):
        zoo.data.dataset_for(model, root, classes=["class_0", "class_1"])


def test_an_unreadable_image_is_named_or_skipped(tmp_path):
    root = tm.write_image_folder(tmp_path / "train", per_class=2)
    bad = root / "class_1" / "broken.png"
    bad.write_bytes(b"\x89PNG but not really")
    model = zoo.create("trainer_conv", num_classes=3)
    data = zoo.data.dataset_for(model, root)
    index = [str(p) for p, _ in data.samples].index(str(bad))
    with pytest.raises(DataError, match="broken.png.*skip_bad=True"):
        data[index]
    with pytest.warns(UserWarning, match="skipped 1 unreadable file.*broken.png"):
        kept = zoo.data.dataset_for(model, root, skip_bad=True)
    assert len(kept) == 6 and all(path != bad for path, _ in kept.samples)


# ---------------------------------------------------------------------------- text tables


def _write_csv(path, rows):
    path.write_text("text,label\n" + "".join(f'"{t}",{label}\n' for t, label in rows))
    return path


REVIEWS = [("a great and wonderful film", "pos"), ("truly great acting", "pos"), ("wonderful, I loved it", "pos"),
           ("a dull and boring film", "neg"), ("boring plot, bad acting", "neg"), ("bad, I hated it", "neg")] * 3


def test_text_csv_and_jsonl_give_tokenized_batches(tmp_path):
    csv_file = _write_csv(tmp_path / "train.csv", REVIEWS)
    jsonl = tmp_path / "val.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in REVIEWS[:6]))
    model = zoo.create("trainer_text", num_classes=2)
    train = zoo.data.dataset_for(model, csv_file, train=True)   # the model has no tokenizer: one is trained
    val = zoo.data.dataset_for(model, jsonl, classes=train.classes)
    assert train.classes == ["neg", "pos"] and len(train) == 18 and len(val) == 6
    batch = train.collate_fn([train[0], train[3]])
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["labels"].tolist() == [1, 0] and batch["input_ids"].shape[0] == 2
    result = fit(model, train, val, epochs=8, lr=0.05, batch_size=6, strategy="no_freeze", **QUIET)
    assert result.history[-1]["val_accuracy"] == 1.0
    assert "tokenizer" in model.zoo_card.extra  # saved with the model by save_pretrained


def test_text_table_errors_name_the_problem(tmp_path):
    model = zoo.create("trainer_text", num_classes=2)
    no_label = tmp_path / "no_label.csv"
    no_label.write_text("text,sentiment\nfine,pos\nbad,neg\n")
    with pytest.raises(DataError, match=r"no label column 'label'; its columns are \['text', 'sentiment'\]"):
        zoo.data.dataset_for(model, no_label, train=True)
    assert len(zoo.data.dataset_for(model, no_label, train=True, label_column="sentiment")) == 2
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok", "label": 1}\n{"text": "oops", \n')
    with pytest.raises(DataError, match="broken.jsonl, line 2"):
        zoo.data.dataset_for(model, broken, train=True)
    empty = tmp_path / "empty.csv"
    empty.write_text("text,label\n")
    with pytest.raises(DataError, match="no rows"):
        zoo.data.dataset_for(model, empty, train=True)
    with pytest.raises(DataError, match="does not exist"):
        zoo.data.dataset_for(model, tmp_path / "missing.csv")
    val = _write_csv(tmp_path / "val.csv", [("new", "neutral")])
    with pytest.raises(DataError, match="not trained on"):
        zoo.data.dataset_for(model, val, classes=["neg", "pos"])


def test_integer_labels_sort_numerically(tmp_path):
    rows = [(f"text {i}", i) for i in (10, 2, 1)]
    from zoo.data.tables import TextTable

    table = TextTable(_write_csv(tmp_path / "t.csv", rows))
    assert table.classes == ["1", "2", "10"] and table.targets == [2, 1, 0]
    assert zoo.data.class_names(tmp_path / "t.csv") == ["1", "2", "10"]


# ---------------------------------------------------------------------------- audio folders


def test_audio_folder_resamples_to_the_cards_rate_and_trains(tmp_path):
    root = tm.write_audio_folder(tmp_path / "clips", rate=16000, per_class=6)
    model = zoo.create("trainer_audio", num_classes=2)
    train = zoo.data.dataset_for(model, root, train=True)
    val = zoo.data.dataset_for(model, root, classes=train.classes)
    clip, label = val[0]
    assert train.classes == ["early", "late"] and clip.shape == (8000,) and label == 0  # 1 s at 8 kHz
    batch = val.collate_fn([val[0], val[7]])
    assert batch.waveforms.shape == (2, 8000) and batch.labels.tolist() == [0, 1]
    result = fit(model, train, val, epochs=12, lr=0.05, batch_size=4, strategy="no_freeze", **QUIET)
    assert result.history[-1]["val_accuracy"] == 1.0


def test_an_unreadable_audio_file_is_named_or_skipped(tmp_path):
    root = tm.write_audio_folder(tmp_path / "clips", per_class=2)
    (root / "late" / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    model = zoo.create("trainer_audio", num_classes=2)
    data = zoo.data.dataset_for(model, root)
    index = [p.name for p, _ in data.samples].index("broken.wav")
    with pytest.raises(DataError, match="broken.wav"):
        data[index]
    with pytest.warns(UserWarning, match="broken.wav"):
        assert len(zoo.data.dataset_for(model, root, skip_bad=True)) == 4
