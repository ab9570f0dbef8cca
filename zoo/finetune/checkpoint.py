"""Training checkpoints: written atomically, read back with ``torch.load(weights_only=True)``.

A checkpoint holds everything an exact resume needs: model, optimizer and scheduler
state, the random number generators, and where in which epoch the run stopped. It is
written to a temporary file beside the target, flushed to disk and renamed over the
old one, so a run killed during a save leaves the previous checkpoint whole.
"""
from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from .._files import atomic_write
from ..errors import ZooError
from .run_dir import cannot_write, recover, replace_folder

LAST = "last.pt"
BEST = "best"


class CheckpointError(ZooError):
    """A checkpoint is missing, unreadable, cannot be written or does not match the run that resumes from it."""


class NonFiniteError(ZooError, FloatingPointError):
    """Training produced NaN or Inf (in the loss or the weights); nothing non-finite is saved."""


def remove_stale_temporaries(directory: str | os.PathLike) -> None:
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


def save(state: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write a training state atomically; on a write error the previous file at `path` is kept."""
    try:
        return atomic_write(path, lambda handle: torch.save(state, handle))
    except OSError as exc:
        raise CheckpointError(f"{cannot_write('checkpoint', Path(path), exc)}; the previous checkpoint is kept, "
                              "so the run can resume from it") from exc


def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a training state (tensors and plain data only: nothing in it can run code)."""
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
        import numpy as np

        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        state["numpy"] = {"keys": torch.from_numpy(keys.astype("int64")), "pos": int(pos),
                          "has_gauss": int(has_gauss), "gauss": float(gauss), "kind": str(kind)}
    except ImportError:
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        import numpy as np

        np_state = state["numpy"]
        np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype("uint32"), np_state["pos"],
                             np_state["has_gauss"], np_state["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _python_state() -> tuple:
    version, internal, gauss = random.getstate()
    return version, list(internal), gauss


# ---------------------------------------------------------------------------- the best model


def save_best(model: torch.nn.Module, directory: str | os.PathLike, extra: dict[str, Any] | None = None,
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
        save_model(model, staging, labels=labels)
        if extra:
            import json

            (staging / "training.json").write_text(json.dumps(extra, indent=2, default=str))

    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        replace_folder(directory, fill)
    except OSError as exc:
        raise CheckpointError(f"{cannot_write('best model', directory, exc)}; the previous one is kept") from exc
    return directory


def check_finite(model: torch.nn.Module, what: str, hint: str = "") -> None:
    """Raise `NonFiniteError` naming the first parameter with a NaN or Inf (`hint` ends the message)."""
    from ..weights.saving import first_nonfinite_parameter

    name = first_nonfinite_parameter(model)
    if name is not None:
        raise NonFiniteError(f"{what} has NaN or Inf values (first in {name!r}) and was not saved{hint}")


def save_model(model: torch.nn.Module, directory: Path, labels: list[str] | None = None) -> None:
    """`zoo.save_pretrained` for zoo models, a plain safetensors state dict for any other module.

    Either way only the model's own files are written, and a model with NaN or Inf parameters is refused.
    """
    from ..factory import CARD_ATTRIBUTE
    from ..weights.formats import write_safetensors
    from ..weights.saving import WEIGHTS_NAME, check_finite_parameters

    if getattr(model, CARD_ATTRIBUTE, None) is not None:
        from .. import save_pretrained

        card = getattr(model, CARD_ATTRIBUTE)
        if labels is not None and card.num_classes not in (None, len(labels)):
            labels = None  # the head does not predict these classes (a regression or feature model)
        save_pretrained(model, str(directory), labels=labels)
        return
    check_finite_parameters(model)
    tensors = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    write_safetensors(_untie(tensors), Path(directory) / WEIGHTS_NAME)


def _untie(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses tensors that share memory; give each shared one its own copy."""
    seen: set[int] = set()
    out = {}
    for name, tensor in tensors.items():
        key = tensor.untyped_storage().data_ptr()
        out[name] = tensor.clone() if key in seen else tensor
        seen.add(key)
    return out
