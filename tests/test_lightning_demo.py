"""The README's demo job two ways: `zoo finetune` and `zoo.lightning` in a ``lightning.Trainer``, same settings.

Slow (two five-epoch fine-tunes of ShuffleNetV2 on 1,800 images on the CPU); the default suite has
the fast checks of the module and the callback in test_lightning.py.
"""
from __future__ import annotations

import json
import shlex
import warnings

import pytest
import torch
from torch.utils.data import DataLoader

import zoo
from zoo import data as zdata
from zoo import demo
from zoo.cli import main
from zoo.finetune import evaluate

L = pytest.importorskip("lightning")
from zoo.lightning import ZooFinetuning, ZooModule  # noqa: E402

pytestmark = pytest.mark.slow


def test_lightning_reaches_the_accuracy_of_zoo_finetune_on_the_demo(tmp_path, capsys):
    paths = demo.make_demo(tmp_path / "demo", verbose=False)
    command = shlex.split(paths.finetune_command())  # 5 epochs, no augmentation, the default options
    assert main(command[1:] + ["--json", "--quiet"]) == 0
    zoo_accuracy = json.loads(capsys.readouterr().out)["after"]

    classes = zdata.class_names(paths.train)
    torch.manual_seed(0)  # as zoo finetune does before it makes the new head
    model = zoo.create(f"local-dir:{paths.weights}", pretrained=True, num_classes=len(classes))
    train = zdata.dataset_for(model, paths.train, train=True, augment=False, classes=classes)
    val = zdata.dataset_for(model, paths.val, classes=classes)
    module = ZooModule(model, labels=classes, lr=1e-3, best_dir=tmp_path / "lightning-best")  # zoo finetune's defaults
    warnings.filterwarnings("ignore", module="lightning")
    trainer = L.Trainer(max_epochs=5, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        callbacks=[ZooFinetuning("freeze_unfreeze")])
    trainer.fit(module, DataLoader(train, batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)),
                DataLoader(val, batch_size=32))
    lightning_accuracy = module.best.value
    print(f"best validation accuracy: zoo finetune {zoo_accuracy:.3f}, lightning {lightning_accuracy:.3f}")
    assert abs(lightning_accuracy - zoo_accuracy) <= 0.03

    saved = zoo.create(f"local-dir:{tmp_path / 'lightning-best'}")  # zoo's format, the best epoch's weights
    measured = evaluate(saved, zdata.dataset_for(saved, paths.val, classes=classes), progress=False,
                                     verbose=False)
    assert measured["accuracy"] == pytest.approx(lightning_accuracy)
