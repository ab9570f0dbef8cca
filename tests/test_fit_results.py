"""FitResult says plainly which epoch is the best (the saved model) and which is the last."""
from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file
from test_text_support import single_thread  # noqa: F401
from torch import nn

from zoo.finetune import Callback, evaluate, fit
from zoo.finetune.metrics import format_confusion

pytestmark = pytest.mark.usefixtures("single_thread")


def _data(n: int = 96):
    x = torch.randn(n, 6, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def _mlp() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))


class SpoilTheLastEpoch(Callback):
    """Before the last epoch: flip the head's sign and stop learning, so the last epoch is the worst."""

    def on_epoch_start(self, trainer, epoch):
        if epoch == trainer.config.epochs - 1:
            with torch.no_grad():
                for param in trainer.model[-1].parameters():
                    param.neg_()
            for group in trainer.optimizer.param_groups:
                group["lr"] = 0.0


def _accuracy(matrix) -> float:
    matrix = torch.tensor(matrix)
    return float(matrix.diag().sum()) / float(matrix.sum())


def test_best_and_last_are_each_their_own_epochs_metrics_and_matrix(tmp_path):
    x, y = _data()
    result = fit(_mlp(), (x, y), (x, y), epochs=3, lr=0.05, batch_size=16, scheduler=None, checkpoint_dir=tmp_path,
                 callbacks=[SpoilTheLastEpoch()], progress=False, verbose=False)
    best, last = result.best, result.last
    assert best["epoch"] == result.best_epoch < 3 and last["epoch"] == 3
    assert best["val_accuracy"] == result.best_value > 0.9 > 0.1 > last["val_accuracy"]
    assert _accuracy(best["val_confusion"]) == pytest.approx(best["val_accuracy"])
    assert _accuracy(last["val_confusion"]) == pytest.approx(last["val_accuracy"])
    # `best` is the saved model: measured again, it gives the same matrix
    saved = _mlp()
    saved.load_state_dict(load_file(result.best_dir / "model.safetensors"))
    assert evaluate(saved, (x, y), progress=False, verbose=False)["confusion"] == best["val_confusion"]
    # the old attributes keep their meaning: the last epoch (the state `model` is in)
    assert result.metrics == last and result.confusion == last["val_confusion"]


def test_the_printed_confusion_matrix_is_the_best_epochs(tmp_path, capsys):
    x, y = _data()
    result = fit(_mlp(), (x, y), (x, y), epochs=3, lr=0.05, batch_size=16, scheduler=None, checkpoint_dir=tmp_path,
                 callbacks=[SpoilTheLastEpoch()], progress=False)
    printed = capsys.readouterr().out
    assert f"confusion matrix of epoch {result.best_epoch}, the best by val_accuracy" in printed
    assert format_confusion(result.best["val_confusion"]) in printed
    assert format_confusion(result.last["val_confusion"]) not in printed


def test_a_run_without_epochs_has_empty_best_and_last():
    x, y = _data(8)
    result = fit(_mlp(), (x, y), epochs=0, progress=False, verbose=False)
    assert result.best == {} and result.last == {}
