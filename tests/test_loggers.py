"""Run logs (``log=[...]``, ``--log``): TensorBoard, MLflow and W&B, read back from what they wrote, offline."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
import trainer_models as tm
from torch import nn

from zoo.cli import main
from zoo.errors import InvalidArgumentError
from zoo.finetune import Trainer, fit
from zoo.finetune.confusion_image import confusion_image
from zoo.finetune.loggers import LoggerMissingError, TensorBoardLog

LABELS = ["neg", "pos"]
EPOCHS, BATCH, SAMPLES = 2, 8, 40  # 5 steps an epoch


def tiny_run(tmp_path, log, **options):
    torch.manual_seed(0)
    x = torch.randn(SAMPLES, 4)
    y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    return fit(model, (x, y), (x, y), epochs=EPOCHS, batch_size=BATCH, lr=0.05, labels=LABELS, progress=False,
               verbose=False, checkpoint_dir=tmp_path / "run", log=log, **options)


def epoch_values(result, name):
    return [h[name] for h in result.history]


def test_tensorboard_has_step_and_epoch_scalars_and_the_confusion_matrix(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = tiny_run(tmp_path, ["tensorboard"])
    events = EventAccumulator(str(tmp_path / "run" / "logs" / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    steps = events.Scalars("step/train_loss")
    assert [e.step for e in steps] == list(range(1, EPOCHS * SAMPLES // BATCH + 1))  # every step, by global step
    assert all(np.isfinite(e.value) for e in steps)
    assert len(events.Scalars("step/lr")) == len(steps)
    for name in ("val_accuracy", "val_loss", "train_loss", "lr"):
        logged = events.Scalars(f"epoch/{name}")
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == pytest.approx(epoch_values(result, name), rel=1e-6)
    images = events.Images("confusion_matrix")
    assert [i.step for i in images] == [1, 2] and images[0].width > 40 and images[0].height > 40


def test_mlflow_store_has_the_metrics_and_options(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    result = tiny_run(tmp_path, ["mlflow"])
    client = MlflowClient(tracking_uri=(tmp_path / "run" / "logs" / "mlflow").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("zoo").experiment_id])
    assert run.info.status == "FINISHED"
    history = client.get_metric_history(run.info.run_id, "epoch/val_accuracy")
    assert sorted((m.step, m.value) for m in history) == list(zip([1, 2], epoch_values(result, "val_accuracy")))
    assert len(client.get_metric_history(run.info.run_id, "step/train_loss")) == EPOCHS * SAMPLES // BATCH
    assert run.data.params["batch_size"] == str(BATCH) and run.data.params["epochs"] == str(EPOCHS)
    images = client.list_artifacts(run.info.run_id, "confusion_matrix")
    assert len(images) == EPOCHS and all(a.file_size > 200 for a in images)


def test_wandb_offline_run_has_the_metrics(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    from wandb_records import history_rows

    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline is the default
    for name in ("WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = tiny_run(tmp_path, ["wandb"])
    (run_file,) = (tmp_path / "run" / "logs" / "wandb").glob("wandb/offline-run-*/run-*.wandb")
    rows = history_rows(run_file)
    epochs = [row for row in rows if "epoch/val_accuracy" in row]
    assert [row["epoch/epoch"] for row in epochs] == [1, 2]
    assert [row["epoch/val_accuracy"] for row in epochs] == pytest.approx(epoch_values(result, "val_accuracy"))
    assert len([row for row in rows if "step/train_loss" in row]) == EPOCHS * SAMPLES // BATCH
    assert all(row["confusion_matrix"]["_type"] == "image-file" if "confusion_matrix" in row
               else row["confusion_matrix/_type"] == "image-file" for row in epochs)


def test_a_logger_object_writes_where_it_is_told_without_a_run_folder(tmp_path):
    pytest.importorskip("tensorboard")
    torch.manual_seed(0)
    x, y = torch.randn(16, 4), torch.randint(0, 2, (16,))
    fit(nn.Linear(4, 2), (x, y), epochs=1, batch_size=8, progress=False, verbose=False,
        log=[TensorBoardLog(tmp_path / "mine")])
    assert list((tmp_path / "mine").glob("events.out.tfevents.*"))


def test_a_missing_logger_package_is_named_before_the_run(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(LoggerMissingError, match=r"pip install wandb"):
        Trainer(log=["wandb"])


def test_unknown_or_repeated_loggers_are_refused():
    with pytest.raises(InvalidArgumentError, match="tensorboard, mlflow, wandb"):
        Trainer(log=["comet"])
    with pytest.raises(InvalidArgumentError, match="log must be a list"):
        Trainer(log="tensorboard")
    if importlib.util.find_spec("tensorboard") is not None:
        with pytest.raises(InvalidArgumentError, match="twice"):
            Trainer(log=["tensorboard", "tensorboard"])


def test_a_failing_run_still_closes_its_logs(tmp_path):
    pytest.importorskip("tensorboard")

    class Boom:
        def on_epoch_end(self, trainer, epoch, metrics):
            raise RuntimeError("boom")

    logger = TensorBoardLog()
    with pytest.raises(RuntimeError, match="boom"):
        tiny_run(tmp_path, [logger], callbacks=[Boom()])
    assert not logger.active and list((tmp_path / "run" / "logs" / "tensorboard").glob("events.*"))


def test_confusion_image_shades_each_row_by_its_share():
    pixels = confusion_image([[9, 1], [0, 5]], LABELS)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    size = pixels.shape[0]
    cell = 28
    corner = size - 4 - 2 * cell  # the cells sit in the bottom right corner

    def shade(row, col):  # a cell's darkness, sampled away from its count's digits
        y, x = corner + row * cell + cell - 4, corner + col * cell + cell - 4
        return 255 - int(pixels[y, x].mean())

    assert shade(0, 0) > shade(0, 1) > 0 and shade(1, 1) > shade(0, 0) and shade(1, 0) == 0


def test_finetune_command_logs_to_tensorboard(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    with tm.trainer_cards_on_one_thread():
        train = tm.write_image_folder(tmp_path / "train", per_class=4)
        out = tmp_path / "model"
        code = main(["finetune", "trainer_conv", "--data", str(train), "--epochs", "1", "--batch-size", "4",
                     "--strategy", "no_freeze", "--out", str(out), "--quiet", "--log", "tensorboard"])
    assert code == 0, capsys.readouterr()
    assert list((out / "checkpoints" / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    with pytest.raises(SystemExit):
        main(["finetune", "trainer_conv", "--data", str(train), "--out", str(tmp_path / "x"), "--log", "comet"])
    assert "invalid choice: 'comet'" in capsys.readouterr().err
