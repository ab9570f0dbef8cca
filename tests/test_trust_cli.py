"""`zoo finetune` and friends on bad input: one line on stderr, a non-zero exit, nothing half done.

Covers bad numbers, output folders that are files, unwritable, in use or holding other files,
a full disk mid-run, a loss that turns NaN, and resumes that do not fit the checkpoint.
"""
from __future__ import annotations

import errno
import json
import os
import socket
from pathlib import Path

import pytest
import torch
import trainer_models as tm

from zoo.cli import main
from zoo.finetune import checkpoint as ckpt


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


@pytest.fixture
def images(tmp_path) -> Path:
    return tm.write_image_folder(tmp_path / "images", per_class=2, size=16)


def finetune(data: Path, out: Path, *extra: str) -> list[str]:
    return ["finetune", "trainer_conv", "--data", str(data), "--epochs", "1", "--batch-size", "3",
            "--strategy", "no_freeze", "--out", str(out), "--quiet", *extra]


def one_line_error(capsys, code: int) -> str:
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1, captured.err
    assert "accuracy before" not in captured.out
    return captured.err


@pytest.mark.parametrize("args", [
    ["finetune", "m", "--data", "d", "--lr", "0"],
    ["finetune", "m", "--data", "d", "--lr", "-0.001"],
    ["finetune", "m", "--data", "d", "--lr", "nan"],
    ["finetune", "m", "--data", "d", "--lr", "inf"],
    ["finetune", "m", "--data", "d", "--epochs", "-1"],
    ["finetune", "m", "--data", "d", "--batch-size", "0"],
    ["finetune", "m", "--data", "d", "--workers", "-1"],
    ["finetune", "m", "--data", "d", "--threads", "-2"],
    ["finetune", "m", "--data", "d", "--checkpoint-every", "0"],
    ["evaluate", "m", "--data", "d", "--batch-size", "0"],
    ["predict", "m", "x.png", "--top-k", "0"],
    ["create", "m", "--num-classes", "-1"],
])
def test_out_of_range_numbers_are_one_line_errors_before_anything_runs(args, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert f"argument {args[-2]}: expected " in err and f"got {args[-1]!r}" in err


def test_help_documents_the_ranges(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "learning rate, above 0" in help_text and "--overwrite" in help_text


def test_an_out_that_is_a_file_is_refused_before_the_model_is_built(images, tmp_path, capsys):
    out = tmp_path / "model.txt"
    out.write_text("my notes")
    err = one_line_error(capsys, main(finetune(images, out)))
    assert f"{out} is a file, not a folder" in err and out.read_text() == "my notes"


def test_an_unwritable_out_is_refused_before_training(images, tmp_path, capsys, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).endswith(os.sep + "lock"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    err = one_line_error(capsys, main(finetune(images, tmp_path / "out")))
    assert "cannot write lock file" in err and "Permission denied; check the folder's permissions" in err


def test_an_out_holding_other_files_or_a_model_needs_overwrite_or_resume(images, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    err = one_line_error(capsys, main(finetune(images, out)))
    assert "holds files zoo did not write (notes.txt)" in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]

    assert main(finetune(images, out, "--overwrite")) == 0  # the folder's contents are replaced
    capsys.readouterr()
    published = sorted(p.name for p in out.iterdir())
    assert "notes.txt" not in published and {"config.json", "model.safetensors", "checkpoints"} <= set(published)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "out"]  # no staging folders left
    assert not (out / "checkpoints" / "lock").exists()

    weights = (out / "model.safetensors").read_bytes()
    err = one_line_error(capsys, main(finetune(images, out)))  # the README line run a second time
    assert "already holds a model; pass --overwrite to replace it, --resume to continue" in err
    assert (out / "model.safetensors").read_bytes() == weights
    assert main(finetune(images, out, "--resume")) == 0


def test_a_folder_another_run_is_using_names_that_run(images, tmp_path, capsys):
    run = tmp_path / "out" / "checkpoints"
    run.mkdir(parents=True)
    (run / "lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "token": "t"}))
    err = one_line_error(capsys, main(finetune(images, tmp_path / "out")))
    assert f"in use by another run (pid {os.getppid()} on {socket.gethostname()}, started " in err


def test_a_full_disk_mid_run_is_one_line_and_keeps_the_previous_checkpoint(images, tmp_path, capsys, monkeypatch):
    real_save, saves = torch.save, []

    def fills_up(obj, handle, *args, **kwargs):
        saves.append(1)
        if len(saves) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_up)
    out = tmp_path / "out"
    code = main(finetune(images, out, "--epochs", "2"))  # the second epoch's checkpoint meets a full disk
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"{out / 'checkpoints' / 'last.pt'}: No space left on device; free some disk space" in err
    monkeypatch.undo()
    assert ckpt.load(out / "checkpoints" / "last.pt")["epoch"] == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]  # nothing published


def test_a_loss_that_turns_nan_is_one_line_and_publishes_nothing(images, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(finetune(images, out, "--lr", "1e30"))
    captured = capsys.readouterr()
    assert code == 2 and captured.err.count("\n") == 1, captured.err
    assert "the training loss became nan at epoch 1" in captured.err and "lower the learning rate" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]
    assert not (out / "checkpoints" / "best").exists()


def test_a_resume_that_does_not_fit_the_checkpoint_is_one_line(images, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(finetune(images, out)) == 0
    capsys.readouterr()
    four = tm.write_image_folder(tmp_path / "four", classes=4, per_class=2, size=16)
    err = one_line_error(capsys, main(finetune(four, out, "--resume")))
    assert "written for trainer_conv with 3 classes, this run trains trainer_conv with 4 classes" in err
    err = one_line_error(capsys, main(finetune(images, out, "--resume", "--lr", "0.5")))
    assert "written with lr=0.001, this run has lr=0.5" in err

    other = tmp_path / "other"
    (other / "checkpoints" / "last.pt").mkdir(parents=True)
    err = one_line_error(capsys, main(finetune(images, other, "--resume")))
    assert "last.pt is a folder, not a checkpoint file" in err


def test_predict_converts_a_16_bit_image_as_training_does(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    import zoo

    folder = tmp_path / "model"
    zoo.save_pretrained(zoo.create("trainer_conv"), str(folder))
    grey = np.full((16, 16), 100, dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "eight.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")  # the same picture in 16 bits
    assert main(["predict", str(folder), str(tmp_path / "eight.png"), str(tmp_path / "sixteen.png"), "--json"]) == 0
    eight, sixteen = json.loads(capsys.readouterr().out)
    assert eight["predictions"] == sixteen["predictions"]
