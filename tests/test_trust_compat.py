"""Folders and checkpoints written by zoo 0.1.0 (saved-model format 1, no weights hash) keep working.

The fixture in tests/fixtures/format_v1 was written by tests/fixtures/make_format_v1.py with zoo 0.1.0:
a `zoo finetune` output folder (the model at the top, the run's checkpoints below it) and the logits
the saved model gave on a fixed input.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import trainer_models as tm
from safetensors.torch import load_file

import zoo
from zoo.cli import main

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "format_v1"


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


@pytest.fixture
def old_run(tmp_path) -> Path:
    out = tmp_path / "model"
    shutil.copytree(FIXTURE / "model", out)
    return out


def test_a_model_folder_saved_by_zoo_0_1_loads_with_identical_outputs(old_run):
    expected = load_file(str(FIXTURE / "expected.safetensors"))
    model = zoo.create(f"local-dir:{old_run}").eval()
    with torch.no_grad():
        logits = model(expected["input"])
    torch.testing.assert_close(logits, expected["logits"], rtol=0, atol=1e-6)
    assert zoo.card_of(model).extra["labels"] == ["class_0", "class_1", "class_2"]


def test_a_run_checkpointed_by_zoo_0_1_resumes(old_run, tmp_path, capsys):
    train = tm.write_image_folder(tmp_path / "data" / "train", per_class=4)
    val = tm.write_image_folder(tmp_path / "data" / "val", per_class=2, seed=1)
    code = main(["finetune", "trainer_conv", "--data", str(train), "--val", str(val), "--epochs", "2", "--lr", "0.02",
                 "--batch-size", "4", "--strategy", "no_freeze", "--out", str(old_run), "--quiet", "--resume"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "resumed from epoch 2" in captured.out + captured.err
    model = zoo.create(f"local-dir:{old_run}")
    assert zoo.card_of(model).num_classes == 3
