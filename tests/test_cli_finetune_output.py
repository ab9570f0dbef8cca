"""What `zoo finetune` reports and writes: the saved epoch's numbers, JSON alone on stdout with --json,
the run's history files, and options refused before any work (--scratch on a freezing recipe, LoRA
without targets)."""
from __future__ import annotations

import csv
import json

import pytest
import torch
import trainer_models as tm

import zoo
from zoo.cli import main
from zoo.finetune.metrics import format_confusion


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


@pytest.fixture
def images(tmp_path):
    return (tm.write_image_folder(tmp_path / "train", per_class=4),
            tm.write_image_folder(tmp_path / "val", per_class=4, seed=1))


def _finetune(train, val, out, *extra):
    """Two epochs whose second is worse than the first (a learning rate far too high for these images)."""
    return main(["finetune", "trainer_conv", "--data", str(train), "--val", str(val), "--epochs", "2", "--lr", "1.0",
                 "--scheduler", "constant", "--batch-size", "4", "--strategy", "no_freeze", "--out", str(out),
                 "--quiet", *extra])


def _evaluate(out, val, capsys) -> dict:
    assert main(["evaluate", str(out), "--data", str(val), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_finetune_prints_the_saved_epochs_accuracy_and_confusion_matrix(images, tmp_path, capsys):
    train, val = images
    out = tmp_path / "model"
    assert _finetune(train, val, out) == 0
    printed = capsys.readouterr().out
    history = json.loads((out / "checkpoints" / "history.json").read_text())
    best = max(history, key=lambda h: h["val_accuracy"])
    assert best["epoch"] == 1 and history[-1]["val_accuracy"] < best["val_accuracy"]  # the last is not the saved one
    saved = _evaluate(out, val, capsys)
    assert saved["confusion"] == best["val_confusion"] != history[-1]["val_confusion"]
    assert format_confusion(saved["confusion"], saved["classes"]) in printed
    assert format_confusion(history[-1]["val_confusion"], saved["classes"]) not in printed
    assert f"accuracy after fine-tuning:  {saved['accuracy']:.1%} on the validation data (epoch 1)" in printed


def test_finetune_json_is_alone_on_stdout_and_the_progress_goes_to_stderr(images, tmp_path, capsys):
    train, val = images
    out = tmp_path / "model"
    assert _finetune(train, val, out, "--json") == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # nothing but the JSON document
    assert "epoch 1/2:" in captured.err and "accuracy before fine-tuning" in captured.err
    assert report["best_epoch"] == 1 and [h["epoch"] for h in report["history"]] == [1, 2]
    saved = _evaluate(out, val, capsys)
    assert report["after"] == pytest.approx(saved["accuracy"]) and report["confusion"] == saved["confusion"]
    assert report["history_files"] == [str(out / "checkpoints" / "history.csv"),
                                       str(out / "checkpoints" / "history.json")]


def test_each_run_writes_every_epochs_history_to_its_run_folder(images, tmp_path, capsys):
    train, val = images
    out = tmp_path / "model"
    assert _finetune(train, val, out, "--json") == 0
    report = json.loads(capsys.readouterr().out)
    run = out / "checkpoints"
    with open(run / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"} <= set(rows[0])
    assert [float(r["val_accuracy"]) for r in rows] == pytest.approx([h["val_accuracy"] for h in report["history"]])
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2] and all("val_confusion" in h for h in history)
    assert not {"history.csv", "history.json"} & {p.name for p in out.iterdir()}  # not part of the model

    # a resumed run carries the history on
    assert main(["finetune", "trainer_conv", "--data", str(train), "--val", str(val), "--epochs", "3", "--lr", "1.0",
                 "--scheduler", "constant", "--batch-size", "4", "--strategy", "no_freeze", "--out", str(out),
                 "--quiet", "--resume"]) == 0
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2, 3]


@pytest.fixture
def freezing_recipe():
    zoo.default_registry().register(zoo.Recipe(name="trainer_conv_ft", model="trainer_conv", options={"freeze": 1},
                                                required=("num_classes",)))
    return "trainer_conv_ft"


def test_scratch_on_a_recipe_that_freezes_is_refused_in_one_line_before_any_work(freezing_recipe, images, tmp_path,
                                                                                capsys):
    train, _ = images
    out = tmp_path / "model"
    assert main(["finetune", freezing_recipe, "--data", str(train), "--scratch", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scratch" in err and "--strategy" in err and "freeze=1" in err
    assert not out.exists()


def test_scratch_with_an_explicit_strategy_trains_a_freezing_recipe_whole(freezing_recipe, images, tmp_path,
                                                                          capsys):
    train, _ = images
    out = tmp_path / "model"
    assert main(["finetune", freezing_recipe, "--data", str(train), "--scratch", "--strategy", "no_freeze",
                 "--epochs", "1", "--batch-size", "4", "--out", str(out), "--quiet"]) == 0
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["config"]["strategy"] == "no_freeze"


def test_lora_without_targets_fails_in_one_line_before_any_work(tmp_path, capsys):
    out = tmp_path / "model"
    missing = tmp_path / "no-data-here"  # not even the data is looked at
    assert main(["finetune", "trainer_conv", "--data", str(missing), "--strategy", "lora", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "names no LoRA targets" in err and "--lora-targets" in err
    assert not out.exists()


def test_lora_targets_name_the_layers_that_get_adapters(tmp_path, capsys):
    clips = tm.write_audio_folder(tmp_path / "clips", rate=8000, per_class=4)
    out = tmp_path / "model"
    assert main(["finetune", "trainer_audio", "--data", str(clips), "--lora-targets", "features", "--epochs", "1",
                 "--lr", "0.05", "--batch-size", "4", "--out", str(out), "--quiet"]) == 0
    torch.manual_seed(0)  # as zoo finetune does before it builds the model (--seed 0)
    start = zoo.create("trainer_audio").state_dict()
    trained = zoo.create(f"local-dir:{out}").state_dict()
    assert not torch.equal(trained["features.weight"], start["features.weight"])  # adapted, then merged
    assert torch.equal(trained["features.bias"], start["features.bias"])  # LoRA leaves the bias frozen
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert state["config"]["strategy"] == "lora"


def test_lora_targets_with_another_strategy_is_refused(tmp_path, capsys):
    assert main(["finetune", "trainer_audio", "--data", str(tmp_path), "--strategy", "no_freeze",
                 "--lora-targets", "features", "--out", str(tmp_path / "model")]) == 2
    assert "--lora-targets goes with --strategy lora" in capsys.readouterr().err
