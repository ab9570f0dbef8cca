"""`zoo finetune`'s training-option flags: parsed, checked, and passed on to the trainer's configuration."""
from __future__ import annotations

import json

import pytest
import trainer_models as tm

from zoo.cli import build_parser, main
from zoo.commands.finetune import training_options
from zoo.finetune import TrainerConfig
from zoo.finetune import checkpoint as ckpt


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


def _config(*flags: str) -> TrainerConfig:
    args = build_parser().parse_args(["finetune", "trainer_conv", "--data", "DATA", *flags])
    return TrainerConfig(**training_options(args))


def test_flags_reach_the_trainer_configuration():
    config = _config("--accumulate-grad-batches", "4", "--precision", "fp16", "--warmup-epochs", "0.5",
                     "--ema-decay", "0.999", "--ema-eval", "--early-stopping-patience", "3", "--min-delta", "0.01",
                     "--monitor", "val_loss", "--monitor-mode", "min", "--label-smoothing", "0.1",
                     "--mixup-alpha", "0.2", "--cutmix-alpha", "1.0")
    assert (config.accumulate_grad_batches, config.precision, config.warmup_epochs, config.warmup_steps) == (
        4, "fp16", 0.5, None)
    assert (config.ema_decay, config.ema_eval, config.early_stopping_patience, config.min_delta) == (
        0.999, True, 3, 0.01)
    assert (config.monitor, config.monitor_mode, config.label_smoothing) == ("val_loss", "min", 0.1)
    assert (config.mixup_alpha, config.cutmix_alpha) == (0.2, 1.0)
    assert _config("--warmup-steps", "100").warmup_steps == 100


def test_defaults_leave_every_new_option_off():
    config = _config()
    assert config == TrainerConfig(epochs=3, precision="auto", scheduler="cosine", optimizer="adamw")


@pytest.mark.parametrize("flags, message", [
    (["--accumulate-grad-batches", "0"], "expected a whole number of at least 1"),
    (["--warmup-steps", "5", "--warmup-epochs", "1"], "not allowed with argument"),
    (["--label-smoothing", "1"], "expected a number from 0 up to 1"),
    (["--mixup-alpha", "-0.5"], "expected a finite number of at least 0"),
    (["--monitor-mode", "up"], "invalid choice"),
    (["--precision", "fp8"], "invalid choice"),
])
def test_bad_flags_are_argparse_errors(flags, message, capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["finetune", "trainer_conv", "--data", "DATA", *flags])
    assert stop.value.code == 2 and message in capsys.readouterr().err


def test_options_that_do_not_go_together_fail_before_the_output_folder_is_made(tmp_path, capsys):
    train = tm.write_image_folder(tmp_path / "train", per_class=2)
    out = tmp_path / "model"
    assert main(["finetune", "trainer_conv", "--data", str(train), "--out", str(out), "--ema-eval"]) == 2
    assert "ema_eval=True needs ema_decay" in capsys.readouterr().err
    assert not out.exists()


def test_a_run_with_the_new_flags_trains_and_keeps_their_state(tmp_path, capsys):
    train = tm.write_image_folder(tmp_path / "train", per_class=6)
    val = tm.write_image_folder(tmp_path / "val", per_class=3, seed=1)
    out = tmp_path / "model"
    code = main(["finetune", "trainer_conv", "--data", str(train), "--val", str(val), "--epochs", "3",
                 "--batch-size", "4", "--lr", "0.02", "--strategy", "no_freeze", "--out", str(out), "--quiet",
                 "--no-augment", "--accumulate-grad-batches", "2", "--precision", "fp16", "--warmup-steps", "2",
                 "--ema-decay", "0.9", "--ema-eval", "--early-stopping-patience", "1", "--min-delta", "10",
                 "--monitor", "val_loss", "--label-smoothing", "0.1", "--mixup-alpha", "0.2", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert [h["epoch"] for h in summary["history"]] == [1, 2]  # no epoch improves val_loss by 10: stops after 2
    assert "early stopping: val_loss has not improved" in captured.err
    state = ckpt.load(out / "checkpoints" / "last.pt")
    assert state["config"]["accumulate_grad_batches"] == 2 and state["config"]["precision"] == "fp16"
    assert state["early_stopping"]["waited"] == 1 and state["ema"] and state["scaler"]
    training = json.loads((out / "training.json").read_text())
    assert training["monitor"] == "val_loss" and training["ema"] is True and training["epoch"] == summary["best_epoch"]
