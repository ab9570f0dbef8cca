"""Reading and writing weight files: safetensors first, pickle checkpoints only as plain tensors.

Reading is lazy where the format allows: safetensors files and zip-format torch checkpoints are
memory-mapped (copy-on-write), so building a model from them touches each page at most once
and never writes to the file.
"""
from __future__ import annotations

import json
import os
import pickle
import stat
from collections.abc import Mapping
from pathlib import Path

import torch

from ..errors import WeightsError
from ..files import atomic_path

StateDict = dict[str, torch.Tensor]
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module")
_SHARD_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_INDEX_LIMIT = 8 * 1024 * 1024  # a shard index lists tensor names: a few hundred kB for the largest models


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
    return _read_file(path)


def _read_file(path: Path) -> StateDict:
    return _read_safetensors(path) if is_safetensors(path) else _read_pickle(path)


def _read_safetensors(path: Path) -> StateDict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot read safetensors file {path} ({exc}): it is truncated or corrupt; "
                           "delete it and download again (`zoo download NAME --force`)") from exc


def _read_sharded(index_path: Path) -> StateDict:
    """The tensors of every shard an index names, each shard a weights file inside the index's folder."""
    weight_map = _weight_map(index_path)
    shards = {name: _read_shard(index_path, name) for name in sorted(set(weight_map.values()))}
    for tensor, shard in weight_map.items():
        if tensor not in shards[shard]:
            raise WeightsError(f"shard index {index_path} maps {tensor!r} to {shard}, which does not hold it: "
                               "the index and its shards do not belong together; download the checkpoint again")
    state: StateDict = {}
    for tensors in shards.values():
        state.update(tensors)
    return state


def _read_shard(index_path: Path, name: str) -> StateDict:
    path = inside_folder(index_path.parent, name, what=f"shard index {index_path}")
    if not path.is_file():
        raise WeightsError(f"shard index {index_path} names {name}, which is missing or not a regular file; "
                           "download the checkpoint again")
    return _read_file(path)


def _weight_map(index_path: Path) -> dict[str, str]:
    """The ``weight_map`` of a shard index: tensor name -> shard file name, each name checked."""
    try:
        index = json.loads(read_small_file(index_path, _INDEX_LIMIT, what="shard index"))
    except ValueError as exc:
        raise WeightsError(f"shard index {index_path} is not valid JSON ({exc}); "
                           "download the checkpoint again") from None
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not weight_map or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
        raise WeightsError(f"shard index {index_path} has no 'weight_map' mapping tensor names to shard files; "
                           "it is not a sharded checkpoint index")
    for shard in set(weight_map.values()):
        if shard == index_path.name or shard.endswith(".index.json") or not shard.endswith(_SHARD_SUFFIXES):
            raise WeightsError(f"shard index {index_path} names {shard!r}, which is not a shard "
                               f"(a {' or '.join(_SHARD_SUFFIXES)} file); the index is malformed")
    return weight_map


def inside_folder(folder: Path, name: str, *, what: str) -> Path:
    """``folder / name``, refused unless the file it really is lies inside `folder`.

    A Hugging Face cache snapshot links its files to the repo's ``blobs`` folder, so for a
    snapshot folder those links count as inside. Raises `WeightsError` naming `what` and `name`.
    """
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise WeightsError(f"{what} names {name!r}, which is not a file inside {folder}; refusing to read it")
    path = folder / relative
    real = path.resolve()
    if not any(real.is_relative_to(root) for root in _real_roots(folder)):
        raise WeightsError(f"{what} names {name!r}, a link to {real} outside {folder}; refusing to read it")
    return path


def _real_roots(folder: Path) -> list[Path]:
    roots = [folder.resolve()]
    repo = folder.parent.parent
    if folder.parent.name == "snapshots" and (repo / "blobs").is_dir():
        roots.append((repo / "blobs").resolve())
    return roots


def read_small_file(path: Path, limit: int, *, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; a FIFO, device or larger file is refused unread."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # opening a FIFO must not wait for a writer
    except OSError as exc:
        raise WeightsError(f"cannot read {what} {path}: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise WeightsError(f"{what} {path} is not a regular file; refusing to read it")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise WeightsError(f"{what} {path} is larger than {limit // (1024 * 1024)} MB; it cannot be a {what}")
    return data


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
    return _weights_in(loaded, path)


def _weights_in(loaded: object, path: Path) -> StateDict:
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


def write_safetensors(state: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str] | None = None) -> str:
    """Write tensors to `path` through a temporary file, so a crash never leaves half a file.

    Returns the sha256 of the bytes written, hashed before the file takes its name.
    """
    from safetensors.torch import save_file

    from .verify import sha256_of

    with atomic_path(path) as tmp:
        save_file(dict(state), str(tmp), metadata={"format": "pt", **(metadata or {})})
        digest = sha256_of(tmp)
    return digest


