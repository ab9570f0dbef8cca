"""Run logs for TensorBoard, MLflow and Weights & Biases: trainer callbacks chosen with ``log=[...]``.

Each logger writes, on the first process only:

- per step: ``step/train_loss`` and ``step/lr`` at the run's global step (losses are read from the
  device in batches of `READ_EVERY`, so logging adds no synchronisation per step);
- per epoch: every number of the epoch's metrics as ``epoch/<name>`` (``epoch/val_accuracy``, ...)
  at the epoch number;
- the epoch's confusion matrix (validation, else training) as an image, ``confusion_matrix``.

No logger is a dependency of zoo: a logger's package is imported when a run starts with it, and
`check_log` (run when the configuration is made) names the package to install when it is missing.
By default a logger writes under the run folder, ``checkpoint_dir/logs/<logger>``; a run without a
``checkpoint_dir`` writes under ``zoo-runs/<date-time>/<logger>`` in the current folder. Pass a logger
object (``TensorBoardLog("my/logs")``) in ``log`` to choose its folder or options.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InvalidArgumentError, ZooError
from .confusion_image import confusion_image
from .logger_names import LOG_FOLDER, LOGGERS, MODULES, PACKAGES

if TYPE_CHECKING:
    import torch

    from .trainer import FitResult, Trainer

READ_EVERY = 10  # step losses read from the device together


class LoggerMissingError(ZooError, ImportError):
    """A logger was chosen whose package is not installed."""


def require_package(name: str) -> None:
    """Refuse logger `name` when its package is not installed, naming what to install."""
    if importlib.util.find_spec(MODULES[name]) is None:
        raise LoggerMissingError(f"log={name!r} needs the {PACKAGES[name]} package, which is not installed: "
                                 f"pip install {PACKAGES[name]} (or drop {name!r} from log / --log)")


def check_log(log: object) -> None:
    """`log` is a list of logger names (`LOGGERS`) or `RunLog` objects, each name's package installed."""
    if isinstance(log, (str, bytes)) or not isinstance(log, Sequence):
        raise InvalidArgumentError(f"log must be a list of logger names ({', '.join(LOGGERS)}) or RunLog objects, "
                                   f"got {log!r}")
    for item in log:
        if isinstance(item, RunLog):
            continue
        if item not in LOGGERS:
            raise InvalidArgumentError(f"unknown logger {item!r} in log; choose from {', '.join(LOGGERS)} "
                                       "(or pass a zoo.finetune.loggers.RunLog)")
        require_package(item)
    names = [item if isinstance(item, str) else item.name for item in log]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InvalidArgumentError(f"log names {twice[0]!r} twice; give each logger once")


def build_loggers(log: Sequence[object]) -> list[RunLog]:
    """The logger objects of a run (`log` as `check_log` passed it): one made afresh for each name, the
    objects given as they are."""
    return [item if isinstance(item, RunLog) else LOGGER_CLASSES[str(item)]() for item in log]


class RunLog:
    """A trainer callback that writes scalars and the confusion matrix to one logging library.

    Subclasses open the library's run (`open`), write numbers (`scalars`) and pictures (`image`) and
    close it (`finish`). `folder` is where it writes (default: the run folder's ``logs/<name>``).
    """

    name = "log"

    def __init__(self, folder: str | os.PathLike[str] | None = None) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.active = False
        self._losses: list[tuple[int, torch.Tensor, float]] = []

    # ----------------------------------------------------------- for subclasses
    def open(self, folder: Path, trainer: Trainer) -> None:
        raise NotImplementedError

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        raise NotImplementedError

    def image(self, tag: str, pixels: np.ndarray, step: int) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    # ----------------------------------------------------------- trainer hooks
    def on_fit_start(self, trainer: Trainer) -> None:
        if not trainer.context.is_main:
            return
        folder = self.folder or default_folder(trainer.config.run_folder, self.name)
        folder.mkdir(parents=True, exist_ok=True)
        self.open(folder, trainer)
        self.folder, self.active = folder, True

    def on_step_end(self, trainer: Trainer, step: int, loss: torch.Tensor) -> None:
        if not self.active:
            return
        lr = float(trainer.optimizer.param_groups[0]["lr"]) if trainer.optimizer is not None else float("nan")
        self._losses.append((trainer.global_step, loss.detach(), lr))
        if len(self._losses) >= READ_EVERY:
            self._write_steps()

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        if not self.active:
            return
        self._write_steps()
        numbers = {f"epoch/{key}": float(value) for key, value in metrics.items()
                   if _is_number(value) and key != "epoch" and not key.endswith("samples")}
        self.epoch_scalars(numbers, epoch + 1, trainer.global_step)
        matrix = metrics.get("val_confusion", metrics.get("train_confusion"))
        if matrix:
            self.epoch_image("confusion_matrix", confusion_image(matrix, trainer.labels), epoch + 1,
                             trainer.global_step)

    def on_fit_end(self, trainer: Trainer, result: FitResult) -> None:
        self.close()

    def close(self) -> None:
        """Write what is pending and close the library's run (a second call does nothing)."""
        if self.active:
            self._write_steps()
            self.active = False
            self.finish()

    # ----------------------------------------------------------- the two time axes
    def epoch_scalars(self, values: Mapping[str, float], epoch: int, global_step: int) -> None:
        """Epoch metrics; by default on an axis of epochs."""
        self.scalars(values, epoch)

    def epoch_image(self, tag: str, pixels: np.ndarray, epoch: int, global_step: int) -> None:
        self.image(tag, pixels, epoch)

    def _write_steps(self) -> None:
        if not self._losses:
            return
        import torch  # the losses are tensors: stacked to read them from the device at once

        values = torch.stack([loss.float() for _, loss, _ in self._losses]).tolist()
        for (step, _, lr), loss in zip(self._losses, values):
            self.scalars({"step/train_loss": loss, "step/lr": lr}, step)
        self._losses.clear()


class TensorBoardLog(RunLog):
    """TensorBoard event files (``tensorboard --logdir FOLDER`` shows them)."""

    name = "tensorboard"

    def open(self, folder: Path, trainer: Trainer) -> None:
        require_package(self.name)
        from torch.utils.tensorboard import SummaryWriter  # optional: only when TensorBoard logs are asked for

        self._writer = SummaryWriter(log_dir=str(folder))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, step)

    def image(self, tag: str, pixels: np.ndarray, step: int) -> None:
        self._writer.add_image(tag, pixels, step, dataformats="HWC")

    def finish(self) -> None:
        self._writer.close()


class MLflowLog(RunLog):
    """An MLflow run. Without ``MLFLOW_TRACKING_URI`` set, a local file store in `folder`
    (``mlflow ui --backend-store-uri FOLDER`` shows it); with it, the tracking server it names."""

    name = "mlflow"

    def __init__(self, folder: str | os.PathLike[str] | None = None, *, experiment: str = "zoo",
                 tracking_uri: str | None = None) -> None:
        super().__init__(folder)
        self.experiment = experiment
        self.tracking_uri = tracking_uri
        self.run_id: str | None = None

    def open(self, folder: Path, trainer: Trainer) -> None:
        require_package(self.name)
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or folder.resolve().as_uri()
        if uri.startswith("file:"):
            # MLflow 3 keeps its file store only on request; a local store needs no server or database
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        from mlflow.tracking import MlflowClient  # optional: only when MLflow logs are asked for

        self._client = MlflowClient(tracking_uri=uri)
        found = self._client.get_experiment_by_name(self.experiment)
        experiment = found.experiment_id if found is not None else self._client.create_experiment(self.experiment)
        run = self._client.create_run(experiment, run_name=trainer.config.run_folder.name
                                      if trainer.config.run_folder is not None else None)
        self.run_id = run.info.run_id
        for key, value in run_options(trainer).items():
            self._client.log_param(self.run_id, key, value)

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        assert self.run_id is not None  # set by open
        stamp = int(time.time() * 1000)
        for tag, value in values.items():
            self._client.log_metric(self.run_id, tag, value, timestamp=stamp, step=step)

    def image(self, tag: str, pixels: np.ndarray, step: int) -> None:
        assert self.run_id is not None  # set by open
        self._client.log_image(self.run_id, pixels, artifact_file=f"{tag}/step_{step:04d}.png")

    def finish(self) -> None:
        assert self.run_id is not None  # set by open
        self._client.set_terminated(self.run_id)


class WandbLog(RunLog):
    """A Weights & Biases run, offline unless ``WANDB_MODE`` (or `mode`) says otherwise: its files stay in
    `folder` (``wandb sync FOLDER/wandb/offline-run-*`` uploads them later).

    W&B keeps one step axis: everything is logged at the run's global step, the epoch metrics with
    ``epoch/epoch`` beside them.
    """

    name = "wandb"

    def __init__(self, folder: str | os.PathLike[str] | None = None, *, project: str = "zoo",
                 mode: str | None = None) -> None:
        super().__init__(folder)
        self.project = project
        self.mode = mode

    def open(self, folder: Path, trainer: Trainer) -> None:
        require_package(self.name)
        import wandb  # optional: only when W&B logs are asked for

        self._wandb = wandb
        mode: Any = self.mode or os.environ.get("WANDB_MODE") or "offline"  # W&B checks the name
        self._run = wandb.init(project=self.project, dir=str(folder), mode=mode, config=run_options(trainer),
                               settings=wandb.Settings(silent=True))

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        self._run.log(dict(values), step=step)

    def image(self, tag: str, pixels: np.ndarray, step: int) -> None:
        self._run.log({tag: self._wandb.Image(pixels)}, step=step)

    def epoch_scalars(self, values: Mapping[str, float], epoch: int, global_step: int) -> None:
        self.scalars({**values, "epoch/epoch": float(epoch)}, global_step)

    def epoch_image(self, tag: str, pixels: np.ndarray, epoch: int, global_step: int) -> None:
        self.image(tag, pixels, global_step)

    def finish(self) -> None:
        self._run.finish()


LOGGER_CLASSES: dict[str, type[RunLog]] = {cls.name: cls for cls in (TensorBoardLog, MLflowLog, WandbLog)}


def default_folder(run_folder: Path | None, name: str) -> Path:
    """``run_folder/logs/<name>``; without a run folder, a new ``zoo-runs/<date-time>/<name>`` here."""
    if run_folder is not None:
        return run_folder / LOG_FOLDER / name
    return Path("zoo-runs") / time.strftime("%Y%m%d-%H%M%S") / name


def run_options(trainer: Trainer) -> dict[str, Any]:
    """The run's options that are plain values (names, numbers, switches), for a logger's parameters."""
    options = {}
    for key, value in vars(trainer.config).items():
        if isinstance(value, (str, int, float, bool)) or value is None:
            options[key] = value
        elif isinstance(value, os.PathLike):
            options[key] = os.fspath(value)
    return options


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
