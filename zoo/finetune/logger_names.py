"""The loggers a run can write to (``log=[...]``, ``--log``), in one torch-free place.

The command line offers these names as choices without importing torch; `zoo.finetune.loggers`
has the loggers themselves. Each one's package is optional and imported only when it is chosen.
"""
from __future__ import annotations

LOGGERS = ("tensorboard", "mlflow", "wandb")
# what `pip install` needs for each logger (the module it imports, and the package that brings it)
MODULES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow-skinny", "wandb": "wandb"}
LOG_FOLDER = "logs"  # inside the run folder (checkpoint_dir): one sub-folder per logger
