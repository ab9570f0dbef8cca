"""zoo.finetune.fit: plain modules, zoo models, metrics, best-model saves, exact resume, precision."""
from __future__ import annotations

import json

import pytest
import torch
import trainer_models as tm
from torch import nn
from torch.utils.data import Dataset

import zoo
import zoo.data
from zoo.finetune import Trainer, fit
from zoo.finetune.checkpoint import CheckpointError
from zoo.finetune.trainer import Callback, evaluate

QUIET = {"progress": False, "verbose": False}


@pytest.fixture(autouse=True)
def one_thread():
    """Small models train fastest on one thread, and the tests run beside other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def cards():
    tm.register_cards()


def _two_class_data(n: int = 96, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def _mlp(seed: int = 1, dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 2))


# ---------------------------------------------------------------------------- any nn.Module


def test_linear_regression_with_mse_and_sgd():
    x, y = tm.linear_regression_data()
    model = nn.Linear(3, 1)
    result = fit(model, (x, y), epochs=15, lr=0.1, batch_size=8, loss="mse", optimizer="sgd", momentum=0.0,
                 scheduler=None, **QUIET)
    assert torch.allclose(model.weight.data, torch.tensor([[2.0, -1.0, 0.5]]), atol=1e-3)
    assert torch.allclose(model.bias.data, torch.tensor([0.25]), atol=1e-3)
    assert result.history[-1]["train_loss"] < 1e-5
    assert "train_accuracy" not in result.history[-1]  # regression: loss only


def test_users_own_loss_and_optimizer_objects_work_unchanged():
    x, y = tm.linear_regression_data()
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, (x, y), epochs=15, batch_size=8, loss=nn.MSELoss(), optimizer=optimizer, scheduler=None, **QUIET)
    assert torch.allclose(model.weight.data, torch.tensor([[2.0, -1.0, 0.5]]), atol=1e-3)


def test_classification_metrics_history_and_confusion_matrix():
    x, y = _two_class_data()
    model = _mlp()
    result = fit(model, (x, y), (x, y), epochs=3, lr=0.05, batch_size=16, **QUIET)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    last = result.history[-1]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr"} <= set(last)
    confusion = torch.tensor(result.confusion)
    assert confusion.shape == (2, 2) and int(confusion.sum()) == len(y)
    assert float(confusion.diag().sum()) / len(y) == pytest.approx(last["val_accuracy"])
    measured = evaluate(model, (x, y), batch_size=32, **QUIET)
    assert measured["accuracy"] == pytest.approx(last["val_accuracy"])
    assert measured["accuracy"] > 0.9


def test_plain_module_best_model_is_a_safetensors_state_dict(tmp_path):
    from safetensors.torch import load_file

    x, y = _two_class_data()
    model = _mlp()
    snapshots = {}

    class Snapshot(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            snapshots[epoch + 1] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    result = fit(model, (x, y), (x, y), epochs=3, lr=0.05, batch_size=16, checkpoint_dir=tmp_path,
                 callbacks=[Snapshot()], **QUIET)
    assert result.best_dir == tmp_path / "best" and result.monitor == "val_accuracy"
    saved = load_file(result.best_dir / "model.safetensors")
    expected = snapshots[result.best_epoch]
    assert saved.keys() == expected.keys() and all(torch.equal(saved[k], expected[k]) for k in saved)
    info = json.loads((result.best_dir / "training.json").read_text())
    assert info["epoch"] == result.best_epoch and info["monitor"] == "val_accuracy"


def test_bad_options_are_clear_errors():
    with pytest.raises(zoo.InvalidArgumentError, match="precision"):
        Trainer(precision="fp8")
    with pytest.raises(zoo.InvalidArgumentError, match="optimizer"):
        Trainer(optimizer="lion")
    with pytest.raises(zoo.InvalidArgumentError, match="checkpoint_dir"):
        Trainer(resume=True)
    with pytest.raises(zoo.InvalidArgumentError, match="Dataset"):
        fit(nn.Linear(2, 1), object(), **QUIET)


# ---------------------------------------------------------------------------- zoo models


def test_zoo_model_best_save_reloads_with_labels(cards, tmp_path):
    train = tm.write_image_folder(tmp_path / "train", per_class=6)
    val = tm.write_image_folder(tmp_path / "val", per_class=4, seed=1)
    model = zoo.create("trainer_conv", num_classes=3)
    data = zoo.data.dataset_for(model, train, train=True)
    held_out = zoo.data.dataset_for(model, val, classes=data.classes)
    result = fit(model, data, held_out, epochs=2, lr=1e-2, batch_size=6, checkpoint_dir=tmp_path / "run",
                 strategy="no_freeze", **QUIET)
    reloaded = zoo.create(f"local-dir:{result.best_dir}")
    assert reloaded.zoo_card.extra["labels"] == ["class_0", "class_1", "class_2"]
    assert reloaded.zoo_card.num_classes == 3
    again = evaluate(reloaded, held_out, **QUIET)
    assert again["accuracy"] == pytest.approx(result.best_value)


def test_default_strategy_trains_the_head_first_then_everything(cards):
    model = zoo.create("trainer_conv", num_classes=3)
    x = torch.randn(24, 3, 16, 16)
    y = torch.arange(24) % 3
    stems = []

    class Watch(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            stems.append(trainer.model.stem[0].weight.detach().clone())

    start = model.stem[0].weight.detach().clone()
    fit(model, (x, y), epochs=2, lr=1e-2, batch_size=8, callbacks=[Watch()], **QUIET)
    assert torch.equal(stems[0], start)        # epoch 1: backbone frozen
    assert not torch.equal(stems[1], start)    # epoch 2: everything trains


def test_a_model_frozen_at_creation_keeps_its_freeze_state_by_default(cards):
    model = zoo.create("trainer_conv", num_classes=3, freeze="backbone")
    stem = model.stem[0].weight.detach().clone()
    x = torch.randn(16, 3, 16, 16)
    fit(model, (x, torch.arange(16) % 3), epochs=2, lr=1e-2, batch_size=8, **QUIET)
    assert torch.equal(model.stem[0].weight, stem)


def test_freeze_strategy_trains_the_head_on_cached_features(cards, tmp_path):
    model = zoo.create("trainer_conv", num_classes=3)
    x = torch.randn(30, 3, 16, 16)
    y = torch.arange(30) % 3
    backbone = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    head = model.head.weight.detach().clone()
    fit(model, (x, y), (x, y), epochs=2, lr=1e-2, batch_size=8, strategy="freeze",
        feature_cache_dir=tmp_path / "features", **QUIET)
    entries = list((tmp_path / "features").glob("*.safetensors"))
    assert len(entries) == 1  # train and val are the same tensors: one entry
    state = model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in backbone.items())  # BatchNorm statistics included
    assert not torch.equal(model.head.weight, head)
    with pytest.raises(zoo.InvalidArgumentError, match="augmentation"):
        data = zoo.data.dataset_for(model, tm.write_image_folder(tmp_path / "imgs", per_class=2), train=True)
        fit(model, data, epochs=1, strategy="freeze", feature_cache=True, **QUIET)


# ---------------------------------------------------------------------------- exact resume


class NoisyPoints(Dataset):
    """Random noise added on every read: augmentation the resume must reproduce."""

    def __init__(self):
        self.x, self.y = _two_class_data(100)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i] + 0.3 * torch.randn(6), self.y[i]


class StopAt(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_step_end(self, trainer, step, loss):
        if trainer.global_step == self.step:
            trainer.request_stop()


@pytest.mark.parametrize("stop_at", [10, 14])  # inside epoch 2, and at the end of epoch 2 (7 steps an epoch)
def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, stop_at):
    options = dict(epochs=3, batch_size=16, lr=0.02, seed=7, checkpoint_every=3, **QUIET)
    straight = _mlp(dropout=0.3)
    fit(straight, NoisyPoints(), NoisyPoints(), checkpoint_dir=tmp_path / "a", **options)

    first = _mlp(dropout=0.3)
    stopped = fit(first, NoisyPoints(), NoisyPoints(), checkpoint_dir=tmp_path / "b", callbacks=[StopAt(stop_at)],
                  **options)
    assert stopped.stopped
    resumed_model = _mlp(seed=99, dropout=0.3)  # other initial weights: everything must come from the checkpoint
    resumed = fit(resumed_model, NoisyPoints(), NoisyPoints(), checkpoint_dir=tmp_path / "b", resume=True, **options)
    assert not resumed.stopped and len(resumed.history) == 3
    for (name, a), b in zip(straight.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_with_another_seed_is_refused(tmp_path):
    x, y = _two_class_data()
    fit(_mlp(), (x, y), epochs=1, checkpoint_dir=tmp_path, seed=1, **QUIET)
    with pytest.raises(CheckpointError, match="seed=1"):
        fit(_mlp(), (x, y), epochs=2, checkpoint_dir=tmp_path, seed=2, resume=True, **QUIET)


# ---------------------------------------------------------------------------- precision and layout


def test_bf16_autocast_and_channels_last_train_on_cpu(cards):
    model = zoo.create("trainer_conv", num_classes=3)
    x = torch.randn(32, 3, 16, 16)
    y = torch.arange(32) % 3
    result = fit(model, (x, y), epochs=2, lr=1e-2, batch_size=8, strategy="no_freeze", precision="bf16",
                 channels_last=True, **QUIET)
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in result.history)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast: weights stay fp32
    assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
