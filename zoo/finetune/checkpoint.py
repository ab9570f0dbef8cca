"""Training checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint holds everything an exact resume needs: model, optimizer and scheduler
state, the random number generators, and where in which epoch the run stopped. It is
written to a temporary file beside the target, flushed to disk and renamed over the
old one, so a run killed during a save leaves the previous checkpoint whole.
"""
from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import torch
from torch.nn.parallel import DistributedDataParallel

from ..cards import card_or_none
from ..errors import ZooError
from ..files import atomic_write
from ..weights.formats import write_safetensors
from ..weights.saving import (
    WEIGHTS_NAME,
    check_finite_parameters,
    first_nonfinite_parameter,
    plain_state_dict,
    save_pretrained,
)
from .run_dir import cannot_write, recover, replace_folder

LAST = "last.pt"
BEST = "best"


class CheckpointError(ZooError):
    """A checkpoint is missing, unreadable, cannot be written or does not match the run that resumes from it."""


class NonFiniteError(ZooError, FloatingPointError):
    """Training produced NaN or Inf (in the loss or the weights); nothing non-finite is saved."""


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> None:
    """Delete half-written files a killed run left behind (the finished ones are untouched).

    Call it only while holding the folder's lock (`zoo.finetune.run_dir.hold`): then no live run
    writes there, and every temporary file in it is a dead run's.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return
    recover(directory / BEST)
    for stale in directory.glob(".*.tmp"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def save(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a training state atomically; on a write error the previous file at `path` is kept."""
    try:
        return atomic_write(path, lambda handle: torch.save(state, handle))
    except OSError as exc:
        raise CheckpointError(f"{cannot_write('checkpoint', Path(path), exc)}; the previous checkpoint is kept, "
                              "so the run can resume from it") from exc


def load(path: str | os.PathLike[str]) -> Any:
    """Read a training state (tensors and plain data only: nothing in it can run code).

    What the file holds is returned as it is; `zoo.finetune.resume.check_checkpoint` checks it is one.
    """
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file; point resume at a last.pt file, "
                              "or start without resume")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; start without resume, or point resume at a checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}; delete it to start over") from exc


# ---------------------------------------------------------------------------- random number generators


def rng_state() -> dict[str, Any]:
    """The state of every generator training draws from, as plain data and tensors."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _python_state()}
    try:
        import numpy as np  # optional: torch runs without it

        kind, keys, pos, has_gauss, gauss = cast(tuple[str, Any, int, int, float], np.random.get_state())
        state["numpy"] = {"keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                          "has_gauss": int(has_gauss), "gauss": float(gauss), "kind": str(kind)}
    except ImportError:
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def seed_everything(seed: int) -> None:
    """Seed every generator training draws from (Python's, torch's and numpy's when installed)."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np  # optional: torch runs without it

        np.random.seed(seed % 2 ** 32)
    except ImportError:
        pass


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        import numpy as np  # optional: torch runs without it

        np_state = state["numpy"]
        np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype("uint32"), np_state["pos"],
                             np_state["has_gauss"], np_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state() -> tuple[Any, ...]:
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss


# ---------------------------------------------------------------------------- the best model


def save_best(model: torch.nn.Module, directory: str | os.PathLike[str], extra: dict[str, Any] | None = None,
              labels: list[str] | None = None) -> Path:
    """Save `model` into `directory`, replacing what is there as one unit once the new copy is complete.

    A zoo model (one that carries a card) is written with `zoo.save_pretrained`, so
    ``zoo.create("local-dir:DIR")`` rebuilds it; any other module as a ``model.safetensors``
    state dict. Weights with NaN or Inf are refused (`NonFiniteError`); on a write error the
    previous copy is kept (`CheckpointError`).
    """
    directory = Path(directory)
    check_finite(model, f"the model to be saved in {directory}")

    def fill(staging: Path) -> None:
        save_model(model, staging, labels=labels, extra=extra)
        if extra:
            (staging / "training.json").write_text(json.dumps(extra, indent=2, default=str))

    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        replace_folder(directory, fill)
    except OSError as exc:
        raise CheckpointError(f"{cannot_write('best model', directory, exc)}; the previous one is kept") from exc
    return directory


def check_finite(model: torch.nn.Module, what: str, hint: str = "") -> None:
    """Raise `NonFiniteError` naming the first parameter with a NaN or Inf (`hint` ends the message)."""
    name = first_nonfinite_parameter(model)
    if name is not None:
        raise NonFiniteError(f"{what} has NaN or Inf values (first in {name!r}) and was not saved{hint}")


def save_model(model: torch.nn.Module, directory: Path, labels: Sequence[str] | None = None,
               extra: Mapping[str, Any] | None = None) -> None:
    """`zoo.save_pretrained` for zoo models, a plain safetensors state dict for any other module.

    Either way only the model's own files are written, and a model with NaN or Inf parameters is
    refused. Tensors tied to each other are stored once, as `zoo.save_pretrained` stores them
    (``safetensors.torch.load_model`` ties them again on load). `extra` is the saved epoch's training
    summary, as `save_best` records it: its validation metrics (``metrics["val_*"]``), ``dataset`` (a
    name, or the data folder) and ``split`` (what the metrics were measured on, default validation)
    go into the model card.
    """
    card = card_or_none(model)
    if card is not None:
        if labels is not None and card.num_classes not in (None, len(labels)):
            labels = None  # the head does not predict these classes (a regression or feature model)
        info = extra or {}
        measured = {key[len("val_"):]: value for key, value in dict(info.get("metrics") or {}).items()
                    if key.startswith("val_")}
        save_pretrained(model, str(directory), labels=labels, datasets=info.get("dataset"), metrics=measured,
                        metrics_split=info.get("split") or "validation")
        return
    check_finite_parameters(model)
    write_safetensors(plain_state_dict(model), Path(directory) / WEIGHTS_NAME)


def unwrap_ddp_and_compile(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a ``DistributedDataParallel`` and a ``torch.compile`` wrapper (or `model` itself)."""
    if isinstance(model, DistributedDataParallel):
        model = model.module
    original = getattr(model, "_orig_mod", model)  # torch.compile's OptimizedModule keeps the module there
    return original if isinstance(original, torch.nn.Module) else model
