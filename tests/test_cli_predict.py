"""`zoo predict`: files and folders of images, texts and files of texts, and --json that prints JSON alone."""
from __future__ import annotations

import json
import shutil

import pytest
import trainer_models as tm

import zoo
from zoo.cli import main
from zoo.data.text import tokenizer_for

CLASSES = ["class_0", "class_1", "class_2"]


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


@pytest.fixture
def image_model(tmp_path):
    return zoo.save_pretrained(zoo.create("trainer_conv"), tmp_path / "image-model", labels=CLASSES)


@pytest.fixture
def text_model(tmp_path):
    model = zoo.create("trainer_text")
    tokenizer_for(model, train_texts=["good fun", "great film", "bad plot", "dull film"])
    return zoo.save_pretrained(model, tmp_path / "text-model", labels=["neg", "pos"])


def _predict_json(capsys, *args) -> list[dict]:
    assert main(["predict", *map(str, args), "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return json.loads(captured.out)  # the JSON document and nothing else


def test_predict_takes_folders_of_images_at_any_depth_in_sorted_order(image_model, tmp_path, capsys):
    photos = tm.write_image_folder(tmp_path / "photos", classes=2, per_class=2)
    (photos / "class_1" / "deeper").mkdir()
    shutil.copy(photos / "class_0" / "0.png", photos / "class_1" / "deeper" / "2.png")
    (photos / "notes.txt").write_text("not an image")
    (photos / ".thumbnails").mkdir()
    shutil.copy(photos / "class_0" / "0.png", photos / ".thumbnails" / "0.png")
    single = tm.write_image_folder(tmp_path / "single", classes=1, per_class=1) / "class_0" / "0.png"

    rows = _predict_json(capsys, image_model, single, photos, "--top-k", "2", "--batch-size", "2")
    expected = [single] + [photos / name for name in
                           ("class_0/0.png", "class_0/1.png", "class_1/0.png", "class_1/1.png", "class_1/deeper/2.png")]
    assert [row["input"] for row in rows] == [str(path) for path in expected]
    assert all(len(row["predictions"]) == 2 and row["predictions"][0]["label"] in CLASSES for row in rows)

    assert main(["predict", str(image_model), str(photos)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and lines[0].startswith(f"{photos / 'class_0' / '0.png'}: class_")


def test_predict_reads_the_texts_of_txt_csv_and_jsonl_files(text_model, tmp_path, capsys):
    txt = tmp_path / "reviews.txt"
    txt.write_text("great fun\n\ndull plot\n")
    table = tmp_path / "reviews.csv"
    table.write_text("id,review\n1,good film\n2,\"bad, dull\"\n")
    lines = tmp_path / "reviews.jsonl"
    lines.write_text(json.dumps({"review": "great plot"}) + "\n")

    rows = _predict_json(capsys, text_model, "fun film", txt, table, lines, "--text-column", "review")
    assert [(row["input"], row.get("source")) for row in rows] == [
        ("fun film", None), ("great fun", f"{txt}, line 1"), ("dull plot", f"{txt}, line 3"),
        ("good film", f"{table}, line 2"), ("bad, dull", f"{table}, line 3"), ("great plot", f"{lines}, line 1"),
    ]
    assert all(row["predictions"][0]["label"] in {"pos", "neg"} for row in rows)

    assert main(["predict", str(text_model), str(txt)]) == 0
    assert capsys.readouterr().out.startswith(f"{txt}, line 1 'great fun': ")


def test_predict_inputs_that_name_nothing_readable_are_one_line_errors(image_model, text_model, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no image")
    cases = [
        ([image_model, tmp_path / "missing.png"], "no such file or folder"),
        ([image_model, empty], "holds no image files"),
        ([text_model, tmp_path / "missing.csv"], "no such file"),
        ([text_model, empty], "is a folder"),
        ([text_model, tmp_path / "reviews.csv", "--text-column", "review"], "no text in column 'review'"),
    ]
    (tmp_path / "reviews.csv").write_text("text\nfine film\n")
    for args, message in cases:
        assert main(["predict", *map(str, args)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (args, err)
