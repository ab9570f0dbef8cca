"""The trainer's training options: gradient accumulation, fp16 with a gradient scaler, warm-up, EMA of
the weights, early stopping, the monitored metric, label smoothing and MixUp/CutMix, and exact resume
of the state they add."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
import trainer_models as tm
from safetensors.torch import load_file
from torch import nn
from torch.utils.data import Dataset

import zoo
from zoo.finetune import Callback, Trainer, fit
from zoo.finetune import checkpoint as ckpt
from zoo.finetune.checkpoint import CheckpointError
from zoo.finetune.loop import cross_entropy
from zoo.finetune.stepping import Updater

QUIET = {"progress": False, "verbose": False}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(n: int = 32, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def _mlp(seed: int = 1, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))


def _sgd_recording(steps: list[dict], lr: float = 0.1):
    """An SGD optimizer (as a function of the groups) that records each step's rate and the weights after it."""

    def make(groups):
        optimizer = torch.optim.SGD(groups, lr=lr)
        optimizer.register_step_pre_hook(lambda opt, *_: steps.append({"lr": opt.param_groups[0]["lr"]}))

        def after(opt, *_):
            steps[-1]["params"] = [p.detach().clone() for group in opt.param_groups for p in group["params"]]

        optimizer.register_step_post_hook(after)
        return optimizer

    return make


class StopAt(Callback):
    def __init__(self, global_step: int) -> None:
        self.global_step = global_step

    def on_step_end(self, trainer, step, loss):
        if trainer.global_step == self.global_step:
            trainer.request_stop()


class NoisyPoints(Dataset):
    """Random noise on every read: augmentation a resume must reproduce."""

    def __init__(self, n: int = 96):
        self.x, self.y = _data(n)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i] + 0.3 * torch.randn(6), self.y[i]


def _same_weights(a: nn.Module, b: nn.Module) -> None:
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def _numbers(history):
    """Each epoch's metrics but its time, as text (so that a NaN equals a NaN)."""
    return [repr({k: v for k, v in h.items() if k != "seconds"}) for h in history]


# ---------------------------------------------------------------------------- gradient accumulation


def test_four_batches_of_eight_accumulated_equal_one_batch_of_thirty_two():
    x, y = _data(32)
    one_batch, accumulated = _mlp(), _mlp()
    steps_a: list[dict] = []
    steps_b: list[dict] = []
    common = dict(epochs=1, lr=0.5, scheduler=None, strategy=None, **QUIET)
    fit(one_batch, (x, y), batch_size=32, optimizer=_sgd_recording(steps_a, 0.5), **common)
    fit(accumulated, (x, y), batch_size=8, accumulate_grad_batches=4, optimizer=_sgd_recording(steps_b, 0.5),
        **common)
    assert len(steps_a) == len(steps_b) == 1  # one optimizer step each
    for a, b in zip(one_batch.parameters(), accumulated.parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    plain = _mlp()
    fit(plain, (x, y), batch_size=8, optimizer="sgd", momentum=0.0, **common)  # four steps: not the same
    assert not torch.allclose(plain[0].weight, one_batch[0].weight, atol=1e-4)


def test_an_epoch_ends_with_a_shorter_window_stepped_at_its_end():
    updater = Updater(optimizer=None, scheduler=None, clipped=nn.Linear(1, 1), accumulate=4)  # type: ignore[arg-type]
    # 10 batches in windows of 4, 4 and 2: the last two make a window of their own, divided by 2
    assert [updater.window(i, 10) for i in range(10)] == [(4, False)] * 3 + [(4, True)] + [(4, False)] * 3 + [
        (4, True), (2, False), (2, True)]
    steps: list[dict] = []
    x, y = _data(40)
    fit(_mlp(), (x, y), epochs=2, batch_size=8, accumulate_grad_batches=4, optimizer=_sgd_recording(steps),
        scheduler=None, **QUIET)
    assert len(steps) == 4  # 5 batches an epoch: a window of 4 and one of 1, each epoch


def test_a_stop_inside_a_window_waits_for_its_step_and_resumes_exactly(tmp_path):
    options = dict(epochs=2, batch_size=8, lr=0.05, seed=3, accumulate_grad_batches=4, **QUIET)
    straight = _mlp(dropout=0.2)
    fit(straight, NoisyPoints(), checkpoint_dir=tmp_path / "a", **options)
    first = _mlp(dropout=0.2)
    stopped = fit(first, NoisyPoints(), checkpoint_dir=tmp_path / "b", callbacks=[StopAt(6)], **options)
    assert stopped.stopped
    assert ckpt.load(tmp_path / "b" / "last.pt")["step"] == 8  # the window of batches 5 to 8 finished first
    resumed = _mlp(seed=5, dropout=0.2)
    fit(resumed, NoisyPoints(), checkpoint_dir=tmp_path / "b", resume=True, **options)
    _same_weights(straight, resumed)


def test_resume_with_another_accumulation_is_refused(tmp_path):
    x, y = _data()
    fit(_mlp(), (x, y), epochs=1, batch_size=8, checkpoint_dir=tmp_path, **QUIET)
    with pytest.raises(CheckpointError, match="accumulate_grad_batches=1"):
        fit(_mlp(), (x, y), epochs=2, batch_size=8, accumulate_grad_batches=2, checkpoint_dir=tmp_path, resume=True,
            **QUIET)


# ---------------------------------------------------------------------------- fp16 and the gradient scaler


def test_fp16_with_a_gradient_scaler_trains_on_cpu():
    x, y = _data(96)
    model = _mlp()
    trainer = Trainer(epochs=3, lr=0.05, batch_size=16, precision="fp16", **QUIET)
    result = trainer.fit(model, (x, y), (x, y))
    assert isinstance(trainer.scaler, torch.amp.GradScaler) and trainer.scaler.get_scale() > 0
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    assert result.history[-1]["val_accuracy"] > 0.8
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: the weights stay fp32


class OneHugePoint(NoisyPoints):
    """One sample overflows fp16 every epoch: the scaler skips that step and halves its scale."""

    def __getitem__(self, i):
        x, y = super().__getitem__(i)
        return (x * 1e5 if i == 0 else x), y


def test_fp16_run_stopped_and_resumed_equals_an_uninterrupted_one(tmp_path):
    options = dict(epochs=3, batch_size=16, lr=0.05, seed=7, precision="fp16", grad_clip=1.0, checkpoint_every=2,
                   **QUIET)
    straight = Trainer(checkpoint_dir=tmp_path / "a", **options)
    a = straight.fit(_mlp(dropout=0.3), OneHugePoint(), NoisyPoints())
    assert straight.scaler.get_scale() == 2.0 ** 16 / 2 ** 3  # one skipped step an epoch
    assert Trainer(checkpoint_dir=tmp_path / "b", callbacks=[StopAt(9)], **options).fit(
        _mlp(dropout=0.3), OneHugePoint(), NoisyPoints()).stopped
    saved = ckpt.load(tmp_path / "b" / "last.pt")
    assert saved["scaler"]["scale"] < 2.0 ** 16 and saved["step"] == 3
    resumed = Trainer(checkpoint_dir=tmp_path / "b", resume=True, **options)
    b = resumed.fit(_mlp(seed=9, dropout=0.3), OneHugePoint(), NoisyPoints())
    _same_weights(a.model, b.model)
    assert resumed.scaler.state_dict() == straight.scaler.state_dict()
    assert _numbers(a.history) == _numbers(b.history)


# ---------------------------------------------------------------------------- warm-up


@pytest.mark.parametrize("warmup", [{"warmup_steps": 4}, {"warmup_epochs": 1}])
def test_warmup_ramps_the_rate_up_then_the_schedule_runs(warmup):
    x, y = _data(32)
    steps: list[dict] = []
    fit(_mlp(), (x, y), epochs=3, batch_size=8, lr=0.1, scheduler="cosine", optimizer=_sgd_recording(steps),
        **warmup, **QUIET)
    lrs = [step["lr"] for step in steps]
    assert lrs[:5] == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1])  # 4 steps of warm-up, then cosine from 0.1
    cosine = [0.05 * (1 + math.cos(math.pi * s / 8)) for s in range(8)]  # over the 12 - 4 steps left
    assert lrs[4:] == pytest.approx(cosine)


def test_warmup_counts_optimizer_steps_with_accumulation():
    x, y = _data(32)
    steps: list[dict] = []
    fit(_mlp(), (x, y), epochs=2, batch_size=4, lr=0.1, scheduler="constant", warmup_epochs=0.5,
        accumulate_grad_batches=2, optimizer=_sgd_recording(steps), **QUIET)
    lrs = [step["lr"] for step in steps]
    assert len(lrs) == 8 and lrs[:3] == pytest.approx([0.05, 0.1, 0.1])  # half of 4 steps an epoch: 2 steps


def test_warmup_position_resumes(tmp_path):
    x, y = _data(32)
    options = dict(epochs=2, batch_size=4, lr=0.1, warmup_steps=6, scheduler="linear", **QUIET)
    straight: list[dict] = []
    fit(_mlp(), (x, y), optimizer=_sgd_recording(straight), checkpoint_dir=tmp_path / "a", **options)
    first: list[dict] = []
    fit(_mlp(), (x, y), optimizer=_sgd_recording(first), checkpoint_dir=tmp_path / "b", callbacks=[StopAt(3)],
        **options)
    rest: list[dict] = []
    fit(_mlp(), (x, y), optimizer=_sgd_recording(rest), checkpoint_dir=tmp_path / "b", resume=True, **options)
    assert [s["lr"] for s in first + rest] == [s["lr"] for s in straight]


# ---------------------------------------------------------------------------- EMA


def test_ema_weights_equal_the_hand_computation():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    start = {k: v.clone() for k, v in model.state_dict().items()}
    states: list[dict] = []

    def make(groups):
        optimizer = torch.optim.SGD(groups, lr=0.1)
        optimizer.register_step_post_hook(
            lambda *_: states.append({k: v.clone() for k, v in model.state_dict().items()}))
        return optimizer

    x, y = _data(40)
    result = fit(model, (x, y), epochs=2, batch_size=8, optimizer=make, ema_decay=0.9, **QUIET)
    assert len(states) == 10
    expected = {k: v.double() for k, v in start.items()}
    for state in states:
        for name, value in state.items():
            if value.is_floating_point():
                expected[name] = 0.9 * expected[name] + 0.1 * value.double()
    for name, value in result.ema.items():
        if value.is_floating_point():
            assert torch.allclose(value.double(), expected[name], atol=1e-6), name
        else:  # BatchNorm's batch counter is copied
            assert torch.equal(value, states[-1][name]), name
    assert not torch.allclose(result.ema["0.weight"], model[0].weight)  # the model keeps its own weights


def test_ema_eval_measures_and_saves_the_averaged_weights(tmp_path):
    x, y = _data(64)
    averages = {}

    class KeepAverage(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            averages[epoch + 1] = {k: v.clone() for k, v in trainer.ema.average.items()}

    model = _mlp()
    result = fit(model, (x, y), (x, y), epochs=3, batch_size=16, lr=0.05, ema_decay=0.8, ema_eval=True,
                 checkpoint_dir=tmp_path, callbacks=[KeepAverage()], **QUIET)
    saved = load_file(result.best_dir / "model.safetensors")
    average = averages[result.best_epoch]
    assert all(torch.equal(saved[k], average[k]) for k in saved)
    measured_on = _mlp()
    measured_on.load_state_dict(averages[3])
    again = zoo.finetune.evaluate(measured_on, (x, y), **QUIET)
    assert again["loss"] == pytest.approx(result.history[-1]["val_loss"], rel=1e-6)
    assert not torch.equal(model[0].weight, averages[3]["0.weight"])  # the model ends with its trained weights


# ---------------------------------------------------------------------------- monitor and early stopping


class Scripted(nn.Module):
    """A regressor whose output, hence its loss against 0, an epoch's script sets (one value an epoch)."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(6, 1)
        self.register_buffer("level", torch.zeros(()))

    def forward(self, x):
        return self.linear(x) * 0 + self.level


class Script(Callback):
    """Sets the validation loss of each epoch to the next value of `losses`."""

    def __init__(self, losses):
        self.losses = losses

    def on_epoch_start(self, trainer, epoch):
        trainer.model.level.fill_(math.sqrt(self.losses[epoch]))


def _scripted_run(losses, tmp_path=None, **options):
    x = torch.randn(16, 6)
    zeros = torch.zeros(16, 1)
    return fit(Scripted(), (x, zeros), (x, zeros), epochs=len(losses), batch_size=8, loss="mse",
               callbacks=[Script(losses)], checkpoint_dir=tmp_path, **QUIET, **options)


LOSSES = [5.0, 4.0, 4.5, 3.98, 4.2, 4.1, 4.3, 4.4]


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    result = _scripted_run(LOSSES, early_stopping_patience=2)
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5, 6]  # best 3.98 at 4; 5 and 6 do not improve
    assert result.early_stopped and not result.stopped
    strict = _scripted_run(LOSSES, early_stopping_patience=2, min_delta=0.05)
    assert len(strict.history) == 4  # 3.98 is not better than 4.0 by more than 0.05
    assert len(_scripted_run(LOSSES).history) == len(LOSSES)  # no early stopping without a patience


def test_monitor_and_mode_choose_the_best_epoch(tmp_path):
    assert _scripted_run(LOSSES).best_epoch == 4  # regression: val_loss, lower is better
    highest = _scripted_run(LOSSES, tmp_path / "max", monitor="val_loss", monitor_mode="max")
    assert highest.best_epoch == 1 and highest.monitor == "val_loss" and highest.best_value == pytest.approx(5.0)
    assert (highest.best_dir / "model.safetensors").is_file()
    train = _scripted_run(LOSSES, monitor="train_loss")
    assert train.monitor == "train_loss" and train.best_epoch == 4
    with pytest.raises(zoo.InvalidArgumentError, match="val_accuracy.*they are.*val_loss"):
        _scripted_run(LOSSES, monitor="val_accuracy")
    with pytest.raises(zoo.InvalidArgumentError, match="validation data"):
        fit(_mlp(), _data(), monitor="val_loss", **QUIET)


def test_default_monitor_for_classification_is_validation_accuracy():
    x, y = _data(32)
    assert fit(_mlp(), (x, y), (x, y), epochs=1, batch_size=8, **QUIET).monitor == "val_accuracy"
    assert fit(_mlp(), (x, y), (x, y), epochs=1, batch_size=8, monitor="val_loss", **QUIET).monitor == "val_loss"


def test_early_stopping_counters_resume(tmp_path):
    class StopAfterEpoch(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            if epoch == 2:
                trainer.request_stop()

    options = dict(early_stopping_patience=2, min_delta=0.05)
    x = torch.randn(16, 6)
    zeros = torch.zeros(16, 1)
    common = dict(epochs=len(LOSSES), batch_size=8, loss="mse", checkpoint_dir=tmp_path, **QUIET, **options)
    first = fit(Scripted(), (x, zeros), (x, zeros), callbacks=[Script(LOSSES), StopAfterEpoch()], **common)
    assert first.stopped and len(first.history) == 3
    assert ckpt.load(tmp_path / "last.pt")["early_stopping"] == {"best": 4.0, "waited": 1, "stopped_epoch": None}
    resumed = fit(Scripted(), (x, zeros), (x, zeros), callbacks=[Script(LOSSES)], resume=True, **common)
    assert len(resumed.history) == 4 and resumed.early_stopped  # as without the stop: counters kept
    again = fit(Scripted(), (x, zeros), (x, zeros), callbacks=[Script(LOSSES)], resume=True, **common)
    assert len(again.history) == 4 and again.early_stopped  # a finished run stays finished


# ---------------------------------------------------------------------------- label smoothing


def test_label_smoothing_trains_with_torchs_smoothed_loss_and_measures_the_plain_one():
    x, y = _data(32)
    start = _mlp()
    expected = F.cross_entropy(start(x), y, label_smoothing=0.2).item()
    model = _mlp()
    result = fit(model, (x, y), (x, y), epochs=1, batch_size=32, label_smoothing=0.2, **QUIET)
    assert result.history[0]["train_loss"] == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(F.cross_entropy(start(x), y).item(), rel=1e-3)
    with torch.no_grad():
        assert result.history[0]["val_loss"] == pytest.approx(F.cross_entropy(model(x), y).item(), rel=1e-6)
    with pytest.raises(zoo.InvalidArgumentError, match="label_smoothing"):
        Trainer(loss="mse", label_smoothing=0.1)


# ---------------------------------------------------------------------------- MixUp and CutMix


def test_mixup_and_cutmix_train_an_image_model_on_soft_targets():
    tm.register_cards()
    model = zoo.create("trainer_conv", num_classes=3)
    x = torch.randn(24, 3, 16, 16)
    y = torch.arange(24) % 3
    targets = []

    def loss(output, target):
        targets.append(target)
        return cross_entropy(output, target)

    result = fit(model, (x, y), epochs=2, batch_size=8, strategy="no_freeze", mixup_alpha=0.4, cutmix_alpha=1.0,
                 loss=loss, **QUIET)
    assert all(t.shape == (8, 3) and t.is_floating_point() for t in targets)
    assert all(torch.allclose(t.sum(dim=1), torch.ones(8)) for t in targets)
    assert any(bool((t.max(dim=1).values < 0.999).any()) for t in targets)  # mixed, not one-hot
    assert 0 <= result.history[-1]["train_accuracy"] <= 1  # against each mixed target's main class
    default_loss = fit(zoo.create("trainer_conv", num_classes=3), (x, y), epochs=1, batch_size=8,
                       strategy="no_freeze", mixup_alpha=0.2, **QUIET)
    assert math.isfinite(default_loss.history[0]["train_loss"])


def test_mixing_turns_the_feature_cache_off(tmp_path):
    tm.register_cards()
    model = zoo.create("trainer_conv", num_classes=3)
    x, y = torch.randn(16, 3, 16, 16), torch.arange(16) % 3
    fit(model, (x, y), epochs=1, batch_size=8, strategy="freeze", cutmix_alpha=1.0,
        feature_cache_dir=tmp_path / "features", **QUIET)  # the backbone sees the mixed images
    assert not (tmp_path / "features").exists()
    with pytest.raises(zoo.InvalidArgumentError, match="feature_cache=True cannot go with"):
        fit(model, (x, y), epochs=1, strategy="freeze", cutmix_alpha=1.0, feature_cache=True, **QUIET)


def test_mixup_resumes_exactly_and_refuses_data_that_is_not_images(tmp_path):
    tm.register_cards()
    x = torch.randn(32, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.arange(32) % 3
    options = dict(epochs=2, batch_size=8, lr=0.02, strategy="no_freeze", mixup_alpha=0.4, cutmix_alpha=1.0,
                   seed=2, **QUIET)
    torch.manual_seed(0)
    straight = zoo.create("trainer_conv", num_classes=3)
    fit(straight, (x, y), checkpoint_dir=tmp_path / "a", **options)
    torch.manual_seed(0)
    assert fit(zoo.create("trainer_conv", num_classes=3), (x, y), checkpoint_dir=tmp_path / "b",
               callbacks=[StopAt(6)], **options).stopped
    resumed = zoo.create("trainer_conv", num_classes=3)
    fit(resumed, (x, y), checkpoint_dir=tmp_path / "b", resume=True, **options)
    _same_weights(straight, resumed)
    with pytest.raises(zoo.InvalidArgumentError, match="image batches"):
        fit(_mlp(), _data(), mixup_alpha=0.2, labels=["a", "b"], **QUIET)
    with pytest.raises(zoo.InvalidArgumentError, match="number of classes"):
        fit(_mlp(), _data(), mixup_alpha=0.2, **QUIET)


# ---------------------------------------------------------------------------- all the new state at once


def test_resume_restores_ema_scaler_accumulation_warmup_and_early_stopping(tmp_path):
    options = dict(epochs=3, batch_size=8, lr=0.05, seed=4, precision="fp16", accumulate_grad_batches=2,
                   warmup_steps=5, ema_decay=0.9, ema_eval=True, early_stopping_patience=5, label_smoothing=0.1,
                   **QUIET)
    straight = _mlp(dropout=0.2)
    a = fit(straight, NoisyPoints(), NoisyPoints(), checkpoint_dir=tmp_path / "a", **options)
    assert fit(_mlp(dropout=0.2), NoisyPoints(), NoisyPoints(), checkpoint_dir=tmp_path / "b",
               callbacks=[StopAt(17)], **options).stopped
    saved = ckpt.load(tmp_path / "b" / "last.pt")
    assert saved["step"] == 6 and {"scaler", "ema", "early_stopping"} <= set(saved)
    resumed = _mlp(seed=3, dropout=0.2)
    b = fit(resumed, NoisyPoints(), NoisyPoints(), checkpoint_dir=tmp_path / "b", resume=True, **options)
    _same_weights(straight, resumed)
    assert all(torch.equal(a.ema[k], b.ema[k]) for k in a.ema)
    assert _numbers(a.history) == _numbers(b.history)
    assert load_file(a.best_dir / "model.safetensors").keys() == load_file(b.best_dir / "model.safetensors").keys()


# ---------------------------------------------------------------------------- checks


@pytest.mark.parametrize("options, message", [
    ({"accumulate_grad_batches": 0}, "accumulate_grad_batches must be a whole number of at least 1"),
    ({"accumulate_grad_batches": 2, "checkpoint_every": 3}, "must be a multiple of accumulate_grad_batches=2"),
    ({"warmup_steps": 2, "warmup_epochs": 1}, "exclusive"),
    ({"warmup_steps": 2, "scheduler": lambda optimizer: None}, "built-in schedulers"),
    ({"ema_decay": 1.5}, "ema_decay must be None or a number between 0 and 1"),
    ({"ema_eval": True}, "ema_eval=True needs ema_decay"),
    ({"early_stopping_patience": 0}, "early_stopping_patience must be None or a whole number of at least 1"),
    ({"min_delta": 0.1}, "min_delta goes with early_stopping_patience"),
    ({"monitor": "accuracy"}, "monitor must be None or an epoch metric's name"),
    ({"monitor_mode": "up"}, r"monitor_mode must be one of \('min', 'max'\)"),
    ({"label_smoothing": 1.0}, "label_smoothing must be a number from 0 up to 1"),
    ({"mixup_alpha": -1}, "mixup_alpha must be a finite number of at least 0"),
    ({"cutmix_alpha": 1.0, "loss": "mse"}, "not 'mse'"),
    ({"precision": "fp8"}, r"precision must be one of \('auto', 'bf16', 'fp16', 'fp32'\)"),
])
def test_bad_training_options_are_clear_errors(options, message):
    with pytest.raises(zoo.InvalidArgumentError, match=message):
        Trainer(**options)
