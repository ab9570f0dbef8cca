"""Backbone features computed once and kept on disk, so a linear probe trains only its head.

`cached_features(model, batches, data=...)` runs the frozen backbone over the data once,
under ``torch.inference_mode`` in eval mode, and records what the head receives (the
input of the module at the card's ``head`` path). The result is stored as a safetensors
file whose name is a hash of:

- the model: card name, weights tag, head path and a hash of every tensor in its state
  outside the head (so any change to the backbone's weights or statistics is a new entry);
- the preprocessing (`preprocessing`, e.g. the eval transform or the card's input spec);
- the data (`data`, a fingerprint the caller gives: see `fingerprint`).

`cached_layer_features(model, batches, layers=[4, 8, 11], data=...)` records, in the same one
pass, the pooled features of several intermediate layers (`zoo.features.pooled_intermediates`:
image maps averaged over pixels, text hidden states over real tokens, speech over valid frames),
so probing several layers runs the backbone once; the layer choice is part of the key.

Reuse is only correct when the backbone is frozen (BatchNorm policy ``"frozen"``) and the
preprocessing has no randomness; the caller decides that. Training the head on the
result is ``head(features[i])``, exactly what the full model computes in eval mode.

Cache directory: ``$ZOO_CACHE/features``, else ``$XDG_CACHE_HOME/zoo/features``, else
``~/.cache/zoo/features``, or the `cache_dir` argument.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..cards import card_of
from ..errors import ZooError
from ..features import num_intermediates, pooled_intermediates, take_indices
from ..files import atomic_path, zoo_cache_dir
from ._select import under
from .heads import get_head

FORMAT_VERSION = 1
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


@dataclass
class CachedFeatures:
    """Features (what the head reads) and labels for a whole dataset, in data order."""

    features: torch.Tensor
    labels: torch.Tensor | None
    path: Path
    hit: bool  # True when read from disk, False when computed in this call

    def __len__(self) -> int:
        return self.features.shape[0]


@dataclass
class CachedLayerFeatures:
    """Pooled features of chosen intermediate layers (layer index -> ``[N, D]``) and labels, in data order."""

    features: dict[int, torch.Tensor]
    labels: torch.Tensor | None
    path: Path
    hit: bool  # True when read from disk, False when computed in this call

    def __len__(self) -> int:
        return next(iter(self.features.values())).shape[0]


def default_cache_dir() -> Path:
    return zoo_cache_dir() / "features"


def cached_features(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    data: Any,
    preprocessing: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
    with_labels: bool = True,
    refresh: bool = False,
) -> CachedFeatures:
    """Features of `batches` through `model`'s backbone, from the cache or computed once and stored.

    Args:
        batches: an iterable of ``(inputs, labels)`` pairs (or of bare inputs with
            ``with_labels=False``), e.g. a DataLoader in a fixed order, no shuffling. Inputs may be
            a tensor, a tuple (positional arguments) or a dict (keyword arguments). It is only
            iterated on a cache miss.
        data: what identifies the data: a string, a list of file paths, a tensor, ... (hashed
            with `fingerprint`). Two datasets with the same `data` share an entry.
        preprocessing: what identifies the preprocessing (hashed with `fingerprint`).
        device: where to run the backbone (default: where the model's parameters are).
        refresh: recompute and overwrite even when an entry exists.
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(model, data=data, preprocessing=preprocessing)
    path = directory / f"{card_of(model).name}-{key}.safetensors"
    if path.exists() and not refresh:
        try:
            features, labels = _read(path)
            return CachedFeatures(features, labels, path, hit=True)
        except Exception:  # noqa: BLE001, S110  # a damaged entry, whatever is wrong with it, is recomputed
            pass
    features, labels = extract_features(model, batches, device=device, with_labels=with_labels)
    _write(path, features, labels, key)
    return CachedFeatures(features, labels, path, hit=False)


def cached_layer_features(
    model: nn.Module,
    batches: Iterable[Any],
    *,
    layers: int | Sequence[int] | None,
    data: Any,
    preprocessing: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
    with_labels: bool = True,
    refresh: bool = False,
) -> CachedLayerFeatures:
    """Pooled features of the intermediate `layers` of `model`, from the cache or computed in one pass.

    `layers` picks as `zoo.features.forward_intermediates` does (None: all; an int n: the last n; a
    list: those, negative from the end); the result is keyed by non-negative layer index. The other
    arguments are those of `cached_features`.
    """
    count = num_intermediates(model)
    taken = take_indices(count, layers, what="layers")
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(model, data=data, preprocessing=preprocessing, layers=taken)
    path = directory / f"{card_of(model).name}-layers-{key}.safetensors"
    if path.exists() and not refresh:
        try:
            tensors = load_file(str(path))
            features = {i: tensors[f"layer.{i}"] for i in taken}
            return CachedLayerFeatures(features, tensors.get("labels"), path, hit=True)
        except Exception:  # noqa: BLE001, S110  # a damaged entry, whatever is wrong with it, is recomputed
            pass
    features, labels = extract_layer_features(model, batches, taken, device=device, with_labels=with_labels)
    _write(path, {f"layer.{i}": t for i, t in features.items()}, labels, key)
    return CachedLayerFeatures(features, labels, path, hit=False)


def extract_layer_features(
    model: nn.Module, batches: Iterable[Any], layers: Sequence[int], *, device: torch.device | str | None = None,
    with_labels: bool = True,
) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
    """Run `model` once per batch in eval mode under inference mode; each of `layers` pooled, and labels, on CPU."""
    found: dict[int, list[torch.Tensor]] = {i: [] for i in layers}

    def record(inputs: Any) -> None:
        for index, pooled in zip(layers, pooled_intermediates(model, inputs, list(layers)), strict=True):
            found[index].append(pooled.detach().cpu())

    labels = _run(model, batches, record, device=device, with_labels=with_labels)
    return {i: _stack(found[i]) for i in layers}, labels


def extract_features(
    model: nn.Module, batches: Iterable[Any], *, device: torch.device | str | None = None, with_labels: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run `model` over `batches` in eval mode under inference mode; return (head inputs, labels) on CPU."""
    _, head = get_head(model)
    captured: list[torch.Tensor] = []
    features: list[torch.Tensor] = []

    def record(inputs: Any) -> None:
        captured.clear()
        _call(model, inputs)
        if len(captured) != 1:
            raise ZooError(f"the head of model {card_of(model).name!r} ran {len(captured)} times in one "
                           "forward pass; features cannot be cached for it")
        features.append(captured[0])

    hook = head.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach().cpu()))
    try:
        labels = _run(model, batches, record, device=device, with_labels=with_labels)
    finally:
        hook.remove()
    return _stack(features), labels


def _run(model: nn.Module, batches: Iterable[Any], record: Callable[[Any], None], *, device: torch.device | str | None,
         with_labels: bool) -> torch.Tensor | None:
    """Call ``record(inputs)`` for every batch (inputs on `device`), the model in eval and inference mode;
    the labels, on CPU."""
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    labels = []
    seen = False
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for batch in batches:
                inputs, target = batch if with_labels else (batch, None)
                record(_to(inputs, device))
                seen = True
                if target is not None:
                    labels.append(torch.as_tensor(target).cpu())
    finally:
        model.train(was_training)
    if not seen:
        raise ZooError("no batches to compute features from: the data is empty")
    # Clone outside inference mode: inference tensors cannot take part in a backward pass.
    return torch.cat(labels).clone() if labels else None


def _stack(features: list[torch.Tensor]) -> torch.Tensor:
    try:
        stacked = torch.cat(features)
    except RuntimeError as exc:
        raise ZooError(f"features of different shapes cannot be cached together ({exc}); "
                       "pad inputs to one length") from None
    return stacked.clone()  # outside inference mode, so a head can train on it


def cache_key(model: nn.Module, *, data: Any, preprocessing: Any = None, layers: Sequence[int] | None = None) -> str:
    """The hex key of a cache entry: model, weights, backbone state, preprocessing, data (and chosen layers)."""
    card = card_of(model)
    parts = {
        "version": FORMAT_VERSION,
        "model": card.name,
        "weights": card.default_weights,
        "head": card.head,
        "state": state_hash(model),
        "preprocessing": fingerprint(preprocessing),
        "data": fingerprint(data),
    }
    if layers is not None:
        parts["layers"] = list(layers)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def state_hash(model: nn.Module) -> str:
    """sha256 over names, shapes, dtypes and values of every state tensor outside the head."""
    head = card_of(model).head or ""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        if head and under(name, head):
            continue
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        digest.update(_tensor_bytes(tensor))
    return digest.hexdigest()


def fingerprint(obj: Any) -> str:
    """A stable hash of plain values, paths (name, size, mtime), tensors, mappings and sequences.

    Functions count by module and name; other objects by their ``repr`` without memory addresses
    (torchvision transforms print their parameters, so they hash by what they do).
    """
    digest = hashlib.sha256()
    _feed(digest, obj)
    return digest.hexdigest()


# --------------------------------------------------------------------------- internals


def _feed(digest: hashlib._Hash, obj: Any) -> None:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        digest.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, Path):
        stat = obj.stat() if obj.exists() else None
        digest.update(f"path:{obj}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1};".encode())
    elif isinstance(obj, torch.Tensor):
        digest.update(f"tensor:{tuple(obj.shape)}:{obj.dtype};".encode())
        digest.update(_tensor_bytes(obj))
    elif isinstance(obj, Mapping):
        digest.update(b"{")
        for key in sorted(obj, key=str):
            _feed(digest, str(key))
            _feed(digest, obj[key])
        digest.update(b"}")
    elif isinstance(obj, (list, tuple)):
        digest.update(b"[")
        for item in obj:
            _feed(digest, item)
        digest.update(b"]")
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _feed(digest, {"__type__": type(obj).__qualname__, **dataclasses.asdict(obj)})
    elif callable(obj) and hasattr(obj, "__qualname__"):
        digest.update(f"callable:{getattr(obj, '__module__', '')}.{obj.__qualname__};".encode())
    else:
        digest.update(f"repr:{type(obj).__qualname__}:{_ADDRESS.sub('', repr(obj))};".encode())


def _tensor_bytes(tensor: torch.Tensor) -> bytes | memoryview:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data if flat.numel() else b""


def _to(inputs: Any, device: torch.device | str) -> Any:
    if isinstance(inputs, torch.Tensor):
        return inputs.to(device, non_blocking=True)
    if isinstance(inputs, Mapping):
        return {k: _to(v, device) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(_to(v, device) for v in inputs)
    return inputs


def _call(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, (list, tuple)):
        return model(*inputs)
    return model(inputs)


def _read(path: Path) -> tuple[torch.Tensor, torch.Tensor | None]:
    tensors = load_file(str(path))
    return tensors["features"], tensors.get("labels")


def _write(path: Path, features: torch.Tensor | Mapping[str, torch.Tensor], labels: torch.Tensor | None,
           key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    named = features if isinstance(features, Mapping) else {"features": features}
    tensors = {name: tensor.contiguous() for name, tensor in named.items()}
    if labels is not None:
        tensors["labels"] = labels.contiguous()
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"key": key, "format": str(FORMAT_VERSION)})


