"""Reading and writing weight files: safetensors first, pickle checkpoints only as plain tensors.

Reading is lazy where the format allows: safetensors files and zip-format torch checkpoints are
memory-mapped (copy-on-write), so building a model from them touches each page at most once
and never writes to the file.
"""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Mapping

import torch

from .._files import atomic_path, write_text_atomic
from ..errors import WeightsError

StateDict = dict[str, torch.Tensor]
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")


def is_safetensors(path: Path) -> bool:
    if path.suffix == ".safetensors":
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 30)


def read_state_dict(path: Path) -> StateDict:
    """Tensors of a weights file (``.safetensors``, a sharded ``*.index.json``, or a pickle checkpoint)."""
    path = Path(path)
    if path.name.endswith(".index.json"):
        return _read_sharded(path)
    if is_safetensors(path):
        return _read_safetensors(path)
    return _read_pickle(path)


def _read_safetensors(path: Path) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read safetensors file {path} ({exc}): it is truncated or corrupt; "
                           "delete it and download again (`zoo download NAME --force`)") from exc


def _read_sharded(index_path: Path) -> StateDict:
    try:
        weight_map = json.loads(index_path.read_text())["weight_map"]
    except (OSError, ValueError, KeyError) as exc:
        raise WeightsError(f"cannot read shard index {index_path}: {exc}") from exc
    state: StateDict = {}
    for shard in sorted(set(weight_map.values())):
        state.update(read_state_dict(index_path.parent / shard))
    return state


def _read_pickle(path: Path) -> StateDict:
    """A pickle checkpoint, read with ``weights_only=True``: tensors and plain containers, never code."""
    try:
        try:
            loaded = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            loaded = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"refusing to load {path}: it holds objects other than tensors, and zoo reads pickle checkpoints "
            f"only with torch.load(weights_only=True). Convert it to safetensors with code you trust. ({exc})"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise WeightsError(f"cannot read checkpoint {path} ({exc}): it is truncated or corrupt; "
                           "delete it and download again") from exc
    return _unwrap(loaded, path)


def _unwrap(loaded: object, path: Path) -> StateDict:
    if isinstance(loaded, Mapping):
        for key in _WRAPPER_KEYS:  # training checkpoints keep the weights under one of these keys
            if isinstance(loaded.get(key), Mapping) and not isinstance(loaded.get(key), torch.Tensor):
                inner = loaded[key]
                if inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                    loaded = inner
                    break
    if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise WeightsError(f"checkpoint {path} is not a mapping of names to tensors")
    return dict(loaded)


def write_safetensors(state: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str] | None = None) -> None:
    """Write tensors to `path` through a temporary file, so a crash never leaves half a file."""
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file(dict(state), str(tmp), metadata={"format": "pt", **(metadata or {})})


write_text = write_text_atomic
