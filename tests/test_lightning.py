"""zoo.lightning: ZooModule and ZooFinetuning in a real ``lightning.Trainer`` on the CPU."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
import trainer_models as tm
from torch.utils.data import DataLoader, TensorDataset

import zoo

L = pytest.importorskip("lightning")
from zoo.lightning import ZooFinetuning, ZooModule  # noqa: E402

LABELS = ["red", "green", "blue"]


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


def colour_data(n: int = 48, seed: int = 0) -> TensorDataset:
    """Class k: 16x16 images dominated by colour channel k."""
    generator = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.rand(n, 3, 16, 16, generator=generator) * 0.3
    x[torch.arange(n), y] += 0.7
    return TensorDataset(x, y)


def lightning_trainer(epochs: int, callbacks=(), **options) -> L.Trainer:
    warnings.filterwarnings("ignore", module="lightning")
    options = {"enable_checkpointing": False, **options}
    return L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, callbacks=list(callbacks), logger=False,
                     enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **options)


def loaders(batch_size: int = 8):
    return (DataLoader(colour_data(), batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)),
            DataLoader(colour_data(24, seed=1), batch_size=batch_size))


class FreezeWatch(L.Callback):
    """Which parameters train and which BatchNorm layers are in training mode, at each epoch's first step."""

    def __init__(self):
        self.trainable, self.bn_training = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            model = pl_module.model
            self.trainable.append(sorted({n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}))
            pl_module.model(batch[0][:2])  # a forward pass applies zoo's BatchNorm policy
            self.bn_training.append(model.stem[1].training)


def test_module_trains_logs_zoo_metrics_and_saves_the_best_model(tmp_path):
    torch.manual_seed(0)
    module = ZooModule("trainer_conv", num_classes=3, labels=LABELS, lr=0.02, best_dir=tmp_path / "best")
    trainer = lightning_trainer(3)
    trainer.fit(module, *loaders())
    assert [h["epoch"] for h in module.history] == [1, 2, 3]
    last = module.history[-1]
    assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1", "lr"} <= set(last)
    assert len(last["val_confusion"]) == 3 and sum(map(sum, last["val_confusion"])) == 24
    assert last["val_accuracy"] > 0.9  # the colours are easy
    assert float(trainer.callback_metrics["val_accuracy"]) == pytest.approx(last["val_accuracy"])

    best = module.best
    assert best.monitor == "val_accuracy" and best.value == max(h["val_accuracy"] for h in module.history)
    saved = zoo.create(f"local-dir:{tmp_path / 'best'}")
    assert zoo.card_of(saved).name == "trainer_conv"
    assert json.loads((tmp_path / "best" / "training.json").read_text())["epoch"] == best.epoch
    x, _ = colour_data(24, seed=1).tensors
    saved.eval()
    accuracy = (saved(x).argmax(-1) == torch.arange(24) % 3).float().mean().item()
    assert accuracy == pytest.approx(module.history[best.epoch - 1]["val_accuracy"])


def test_optimizer_has_layer_decay_and_zoo_schedule():
    module = ZooModule("trainer_conv", num_classes=3, lr=0.1, layer_decay=0.5, warmup_steps=2, scheduler="cosine")
    trainer = lightning_trainer(2)
    trainer.fit(module, loaders()[0])
    optimizer = trainer.optimizers[0]
    assert {group["group"] for group in optimizer.param_groups} == {"stem", "stage", "head"}
    steps = module.history[-1]
    assert steps["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine down to nothing at the end of the run
    bases = {g["group"]: b for g, b in zip(optimizer.param_groups, trainer.lr_scheduler_configs[0].scheduler.base_lrs)}
    assert bases["head"] == pytest.approx(0.1) and bases["stage"] == pytest.approx(0.05)
    assert bases["stem"] == pytest.approx(0.025)


def test_finetuning_callback_freezes_then_unfreezes_with_zoo_batchnorm_policy():
    torch.manual_seed(0)
    module = ZooModule("trainer_conv", num_classes=3, lr=0.01)
    watch = FreezeWatch()
    trainer = lightning_trainer(4, [ZooFinetuning("freeze_unfreeze", freeze_epochs=2), watch])
    trainer.fit(module, *loaders())
    assert watch.trainable == [["head"], ["head"], ["head", "stage", "stem"], ["head", "stage", "stem"]]
    assert watch.bn_training == [False, False, True, True]  # frozen BatchNorm keeps its statistics


def test_finetuning_callback_unfreezes_at_milestones_and_freezes_with_affine_bn():
    module = ZooModule("trainer_conv", num_classes=3, lr=0.01)
    watch = FreezeWatch()
    trainer = lightning_trainer(3, [ZooFinetuning("unfreeze_milestones", milestones=[1, 2]), watch])
    trainer.fit(module, *loaders())
    assert watch.trainable == [["head"], ["head", "stage"], ["head", "stage", "stem"]]

    module = ZooModule("trainer_conv", num_classes=3, lr=0.01)
    watch = FreezeWatch()
    lightning_trainer(1, [ZooFinetuning("freeze", bn="affine"), watch]).fit(module, *loaders())
    model = module.model
    assert watch.bn_training == [False]  # affine: the statistics stay fixed ...
    assert model.stem[1].weight.requires_grad and model.stage[1].bias.requires_grad  # ... and the scales train
    assert not model.stem[0].weight.requires_grad and not model.stage[0].weight.requires_grad


def test_module_takes_a_plain_module_and_refuses_bad_options():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3))
    module = ZooModule(model, lr=0.05, monitor="val_loss")
    lightning_trainer(2).fit(module, *loaders())
    assert module.best.monitor == "val_loss" and len(module.history) == 2
    with pytest.raises(zoo.errors.InvalidArgumentError, match="layer_groups"):
        lightning_trainer(1).fit(ZooModule(model, layer_decay=0.5), loaders()[0])
    with pytest.raises(zoo.errors.InvalidArgumentError, match="optimizer"):
        ZooModule(model, optimizer="lion")
    with pytest.raises(zoo.errors.InvalidArgumentError, match="freeze_unfreeze"):
        ZooFinetuning("thaw")


def test_a_resumed_run_keeps_the_history_the_best_model_and_the_freezing(tmp_path):
    torch.manual_seed(0)
    checkpoints = L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    module = ZooModule("trainer_conv", num_classes=3, lr=0.02, best_dir=tmp_path / "best")
    first = lightning_trainer(2, [ZooFinetuning("freeze_unfreeze", freeze_epochs=2), checkpoints],
                              enable_checkpointing=True, default_root_dir=tmp_path)
    first.fit(module, *loaders())
    assert [h["epoch"] for h in module.history] == [1, 2]

    resumed = ZooModule("trainer_conv", num_classes=3, lr=0.02, best_dir=tmp_path / "best")
    watch = FreezeWatch()
    second = lightning_trainer(4, [ZooFinetuning("freeze_unfreeze", freeze_epochs=2), watch], enable_checkpointing=True,
                               default_root_dir=tmp_path)  # its own checkpoints go there, not into the working folder
    second.fit(resumed, *loaders(), ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert resumed.history[:2] == module.history
    assert watch.trainable == [["head", "stage", "stem"]] * 2  # epochs 3 and 4 train everything
    best = max(resumed.history, key=lambda h: h["val_accuracy"])
    assert resumed.best.value == best["val_accuracy"]
