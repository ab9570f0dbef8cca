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

The caching pass is made fast for the device (`zoo.speed`): consecutive batches of the same shape are
joined into passes of up to `CACHE_BATCH_MULTIPLE` times the first batch's size (at most
`MAX_CACHE_BATCH` samples and `MAX_CACHE_BYTES` of input; layer features run the batches as given,
since a pass keeps every chosen layer's maps); convolutional models run channels_last on
CUDA; ``precision="auto"`` runs bf16 autocast on a CUDA device that supports it natively and fp32
elsewhere (features are stored as fp32). fp32 features equal the eager ones within 1e-6 (on a CPU
they are usually identical); bf16 ones are within bf16 rounding, and their precision is part of the key.

Reuse is only correct when the backbone is frozen (BatchNorm policy ``"frozen"``) and the
preprocessing has no randomness; the caller decides that. A model whose head has companions that train
(modules built fresh beside it, `zoo.head_companions`) cannot use the cache: what the head reads is their
output, which changes as they train (`training_companions` names them). Training the head on the
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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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
from ..head_companions import head_companions, within
from ..speed import autocast, model_device, resolve_precision, wants_channels_last
from ._select import under
from .heads import get_head

FORMAT_VERSION = 1
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
CACHE_BATCH_MULTIPLE = 4  # a caching pass joins up to this many incoming batches: no gradients, so room to spare
MAX_CACHE_BATCH = 512  # samples per forward pass of the caching pass, at most
MAX_CACHE_BYTES = 256 * 2**20  # input bytes per forward pass of the caching pass, at most


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
    precision: str = "auto",
    channels_last: bool | None = None,
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
        precision: ``auto`` (bf16 on a CUDA device that runs it natively, else fp32), ``fp32``, ``bf16`` or
            ``fp16``: the autocast of the caching pass; other than fp32 it is part of the key.
        channels_last: run a convolutional model channels_last (default: on CUDA only).
    """
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    run = _Pass.for_model(model, device, precision, channels_last)
    key = cache_key(model, data=data, preprocessing=preprocessing, precision=run.precision)
    path = directory / f"{card_of(model).name}-{key}.safetensors"
    if path.exists() and not refresh:
        try:
            features, labels = _read(path)
            return CachedFeatures(features, labels, path, hit=True)
        except Exception:  # noqa: BLE001, S110  # a damaged entry, whatever is wrong with it, is recomputed
            pass
    features, labels = extract_features(model, batches, device=run.device, with_labels=with_labels,
                                        precision=run.precision, channels_last=run.channels_last)
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
    precision: str = "auto",
    channels_last: bool | None = None,
) -> CachedLayerFeatures:
    """Pooled features of the intermediate `layers` of `model`, from the cache or computed in one pass.

    `layers` picks as `zoo.features.forward_intermediates` does (None: all; an int n: the last n; a
    list: those, negative from the end); the result is keyed by non-negative layer index. The other
    arguments are those of `cached_features`.
    """
    count = num_intermediates(model)
    taken = take_indices(count, layers, what="layers")
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    run = _Pass.for_model(model, device, precision, channels_last)
    key = cache_key(model, data=data, preprocessing=preprocessing, layers=taken, precision=run.precision)
    path = directory / f"{card_of(model).name}-layers-{key}.safetensors"
    if path.exists() and not refresh:
        try:
            tensors = load_file(str(path))
            features = {i: tensors[f"layer.{i}"] for i in taken}
            return CachedLayerFeatures(features, tensors.get("labels"), path, hit=True)
        except Exception:  # noqa: BLE001, S110  # a damaged entry, whatever is wrong with it, is recomputed
            pass
    features, labels = extract_layer_features(model, batches, taken, device=run.device, with_labels=with_labels,
                                              precision=run.precision, channels_last=run.channels_last)
    _write(path, {f"layer.{i}": t for i, t in features.items()}, labels, key)
    return CachedLayerFeatures(features, labels, path, hit=False)


def extract_layer_features(
    model: nn.Module, batches: Iterable[Any], layers: Sequence[int], *, device: torch.device | str | None = None,
    with_labels: bool = True, precision: str = "auto", channels_last: bool | None = None,
) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
    """Run `model` once per batch in eval mode under inference mode; each of `layers` pooled, and labels, on CPU."""
    found: dict[int, list[torch.Tensor]] = {i: [] for i in layers}

    def record(inputs: Any) -> None:
        for index, pooled in zip(layers, pooled_intermediates(model, inputs, list(layers)), strict=True):
            found[index].append(_stored(pooled))

    # The batches run as given: every chosen layer's maps are alive in one pass, so joining costs layers x memory.
    labels = _Pass.for_model(model, device, precision, channels_last).run(model, batches, record,
                                                                          with_labels=with_labels, multiple=1)
    return {i: _stack(found[i]) for i in layers}, labels


def extract_features(
    model: nn.Module, batches: Iterable[Any], *, device: torch.device | str | None = None, with_labels: bool = True,
    precision: str = "auto", channels_last: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run `model` over `batches` (joined into larger passes) in eval mode under inference mode; return
    (head inputs, labels) on CPU."""
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

    hook = head.register_forward_pre_hook(lambda module, args: captured.append(_stored(args[0])))
    run = _Pass.for_model(model, device, precision, channels_last)
    try:
        labels = run.run(model, batches, record, with_labels=with_labels)
    finally:
        hook.remove()
    return _stack(features), labels


@dataclass(frozen=True)
class _Pass:
    """How one caching pass runs: device, resolved precision and memory format."""

    device: torch.device
    precision: str
    channels_last: bool

    @classmethod
    def for_model(cls, model: nn.Module, device: torch.device | str | None, precision: str,
                  channels_last: bool | None) -> _Pass:
        where = torch.device(device) if device is not None else model_device(model)
        return cls(where, resolve_precision(precision, where), wants_channels_last(model, where, channels_last))

    def run(self, model: nn.Module, batches: Iterable[Any], record: Callable[[Any], None], *,
            with_labels: bool, multiple: int = CACHE_BATCH_MULTIPLE) -> torch.Tensor | None:
        """Call ``record(inputs)`` for every joined batch (inputs on the device), the model in eval and inference
        mode, under the pass's autocast and memory format; the labels, on CPU."""
        labels = []
        seen = False
        was_training = model.training
        converted = self.channels_last and not _is_channels_last(model)
        model.eval()
        if converted:
            model.to(memory_format=torch.channels_last)
        try:
            with torch.inference_mode(), autocast(self.precision, self.device):
                pairs = (batch if with_labels else (batch, None) for batch in batches)
                for inputs, target in joined(pairs, multiple=multiple):
                    record(_to(inputs, self.device, self.channels_last))
                    seen = True
                    if target is not None:
                        labels.append(torch.as_tensor(target).cpu())
        finally:
            model.train(was_training)
            if converted:
                model.to(memory_format=torch.contiguous_format)
        if not seen:
            raise ZooError("no batches to compute features from: the data is empty")
        # Clone outside inference mode: inference tensors cannot take part in a backward pass.
        return torch.cat(labels).clone() if labels else None


def joined(pairs: Iterable[tuple[Any, Any]], *, multiple: int = CACHE_BATCH_MULTIPLE) -> Iterator[tuple[Any, Any]]:
    """``(inputs, target)`` pairs, consecutive ones joined along the batch while their shapes allow it.

    A joined batch holds up to `multiple` times the size of its first batch, at most `MAX_CACHE_BATCH` samples
    and `MAX_CACHE_BYTES` of input; inputs of other shapes (texts padded to another length) start a new one.
    The order of the samples is kept.
    """
    pending: list[tuple[Any, Any]] = []
    limit = size = size_bytes = 0
    for inputs, target in pairs:
        count, nbytes = _extent(inputs)
        if count is None:  # not a batch of tensors: passed on as it is
            yield from _flush(pending)
            pending, size, size_bytes = [], 0, 0
            yield inputs, target
            continue
        if pending and (size + count > limit or size_bytes + nbytes > MAX_CACHE_BYTES
                        or not _same_layout(pending[0], (inputs, target))):
            yield from _flush(pending)
            pending, size, size_bytes = [], 0, 0
        if not pending:
            limit = max(count, min(count * multiple, MAX_CACHE_BATCH))
        pending.append((inputs, target))
        size += count
        size_bytes += nbytes
    yield from _flush(pending)


def _flush(pending: list[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
    if len(pending) == 1:
        yield pending[0]
    elif pending:
        targets = [target for _, target in pending]
        target = None if targets[0] is None else torch.cat([torch.as_tensor(t) for t in targets])
        yield _cat([inputs for inputs, _ in pending]), target


def _tensors(inputs: Any) -> list[torch.Tensor] | None:
    """The tensors of one batch's inputs (a tensor, a tuple or list, or a dict of them); None for anything else."""
    if isinstance(inputs, torch.Tensor):
        found = [inputs]
    elif isinstance(inputs, Mapping):
        found = list(inputs.values())
    elif isinstance(inputs, (list, tuple)):
        found = list(inputs)
    else:
        return None
    if not found or not all(isinstance(t, torch.Tensor) and t.dim() > 0 for t in found):
        return None
    if len({t.shape[0] for t in found}) != 1:
        return None
    return found


def _extent(inputs: Any) -> tuple[int | None, int]:
    tensors = _tensors(inputs)
    if tensors is None:
        return None, 0
    return tensors[0].shape[0], sum(t.numel() * t.element_size() for t in tensors)


def _same_layout(first: tuple[Any, Any], other: tuple[Any, Any]) -> bool:
    """Whether two batches can be joined: the same kind of inputs, names, trailing shapes and dtypes."""
    (a, a_target), (b, b_target) = first, other
    if type(a) is not type(b) or (a_target is None) != (b_target is None):
        return False
    if isinstance(a, Mapping) and list(a) != list(b):
        return False
    ta, tb = _tensors(a), _tensors(b)
    assert ta is not None and tb is not None  # both batches of tensors
    return len(ta) == len(tb) and all(x.shape[1:] == y.shape[1:] and x.dtype == y.dtype for x, y in zip(ta, tb))


def _cat(batches: list[Any]) -> Any:
    first = batches[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(batches)
    if isinstance(first, Mapping):
        return {key: torch.cat([b[key] for b in batches]) for key in first}
    return type(first)(torch.cat(parts) for parts in zip(*batches))


def _is_channels_last(model: nn.Module) -> bool:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    return conv is not None and conv.weight.is_contiguous(memory_format=torch.channels_last) \
        and not conv.weight.is_contiguous()


def _stored(features: torch.Tensor) -> torch.Tensor:
    """A head input as the cache keeps it: detached, fp32 (from a bf16 or fp16 pass), on the CPU."""
    features = features.detach()
    return (features.float() if features.is_floating_point() else features).cpu()


def _stack(features: list[torch.Tensor]) -> torch.Tensor:
    try:
        stacked = torch.cat(features)
    except RuntimeError as exc:
        raise ZooError(f"features of different shapes cannot be cached together ({exc}); "
                       "pad inputs to one length") from None
    return stacked.clone()  # outside inference mode, so a head can train on it


def training_companions(model: nn.Module) -> list[str]:
    """The head's companions (`zoo.head_companions`) that hold trainable parameters: while any does, features
    recorded before the head would be features of layers that are still training."""
    companions = head_companions(card_of(model))
    trainable = [name for name, param in model.named_parameters() if param.requires_grad]
    return [path for path in companions if any(within(name, [path]) for name in trainable)]


def cache_key(model: nn.Module, *, data: Any, preprocessing: Any = None, layers: Sequence[int] | None = None,
              precision: str = "fp32") -> str:
    """The hex key of a cache entry: model, weights, backbone state, preprocessing, data (and chosen layers, and
    the precision of the pass when it is not fp32)."""
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
    if precision != "fp32":
        parts["precision"] = precision
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


def _to(inputs: Any, device: torch.device | str, channels_last: bool = False) -> Any:
    """`inputs` on `device`; image batches (4-d floating tensors) channels_last when asked."""
    if isinstance(inputs, torch.Tensor):
        moved = inputs.to(device, non_blocking=True)
        if channels_last and moved.dim() == 4 and moved.is_floating_point():
            return moved.contiguous(memory_format=torch.channels_last)
        return moved
    if isinstance(inputs, Mapping):
        return {k: _to(v, device, channels_last) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return type(inputs)(_to(v, device, channels_last) for v in inputs)
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


