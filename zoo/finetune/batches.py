"""Data for the trainer: what it accepts as a dataset, how a batch is split and fed to a model.

A batch is ``(inputs, target)``, ``(*inputs, target)`` (the model is called with the inputs as
positional arguments) or a dict with a ``labels`` entry (the rest are keyword arguments).
A target of `IGNORE_INDEX` counts for nothing (torch's and transformers' convention); in a dict
batch with per-token labels, the tokens its ``attention_mask`` marks as padding get it too.
`SeededBatches` makes random augmentation reproducible across resumes and worker processes.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from ..errors import InvalidArgumentError, ZooError

IGNORE_INDEX = -100  # a target that counts for nothing: padding, and a word's sub-word tokens after its first


class SeededBatches(Dataset[Any]):
    """Fetches each batch under its own seed, so random augmentation depends only on
    (seed, epoch, batch) and not on worker processes or where a resumed run started."""

    def __init__(self, dataset: Dataset[Any], seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]  # map-style datasets have a length

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        batch_seed = ((self.seed * 1_000_003 + self.epoch) * 1_000_033 + indices[0]) % (2 ** 63)
        # only the CPU generator is reseeded (torch.manual_seed would also queue every accelerator's, slowly)
        generator = torch.default_generator
        torch_state, python_state = generator.get_state(), random.getstate()
        generator.manual_seed(batch_seed)
        random.seed(batch_seed)
        try:
            fetch = getattr(self.dataset, "__getitems__", None)
            return list(fetch(indices)) if fetch else [self.dataset[i] for i in indices]
        finally:
            generator.set_state(torch_state)
            random.setstate(python_state)


# ---------------------------------------------------------------------------- data and batches


def as_dataset(data: Any) -> Dataset[Any]:
    """The map-style dataset `data` is or holds: a dataset, a DataLoader's, or a pair of tensors as one."""
    if isinstance(data, DataLoader):
        return data.dataset
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        return TensorDataset(*data)
    if isinstance(data, Dataset) or (hasattr(data, "__getitem__") and hasattr(data, "__len__")):
        return cast(Dataset[Any], data)
    raise InvalidArgumentError(
        f"cannot train on a {type(data).__name__}: give a map-style Dataset, a DataLoader over one, "
        "or a pair of tensors (inputs, targets)")


def collate_of(data: Any) -> Callable[..., Any] | None:
    """The collate function a DataLoader or dataset brings, if any."""
    if isinstance(data, DataLoader):
        return data.collate_fn
    return getattr(data, "collate_fn", None)


def labels_of(data: Any) -> list[str] | None:
    dataset = data.dataset if isinstance(data, DataLoader) else data
    classes = getattr(dataset, "classes", None)
    return [str(c) for c in classes] if classes is not None else None


def data_fingerprint(data: Any) -> Any:
    """What identifies a dataset's contents for the feature cache, or None when nothing does."""
    dataset = as_dataset(data)
    if isinstance(dataset, TensorDataset):
        return list(dataset.tensors)
    found = getattr(dataset, "fingerprint", None)
    return found() if callable(found) else found


def is_deterministic(data: Any) -> bool:
    dataset = as_dataset(data)
    return isinstance(dataset, TensorDataset) or getattr(dataset, "augments", None) is False


def to_device(batch: Any, device: torch.device, channels_last: bool) -> Any:
    if isinstance(batch, torch.Tensor):
        batch = batch.to(device, non_blocking=True)
        if channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch
    if isinstance(batch, Mapping):
        return {k: to_device(v, device, channels_last) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device, channels_last) for v in batch) if not hasattr(batch, "_fields") \
            else type(batch)(*(to_device(v, device, channels_last) for v in batch))
    return batch


def split_batch(batch: Any) -> tuple[Any, torch.Tensor]:
    """``(*inputs, target)`` or a dict with ``labels`` (or ``label``) -> (inputs, target)."""
    if isinstance(batch, Mapping):
        key = "labels" if "labels" in batch else "label" if "label" in batch else None
        if key is None:
            raise ZooError(f"a batch dict needs a 'labels' entry; it has {sorted(batch)}")
        named = {k: v for k, v in batch.items() if k != key}
        return named, unlabel_padding(batch[key], named.get("attention_mask"))
    if isinstance(batch, (list, tuple)) and len(batch) >= 2:
        inputs = batch[0] if len(batch) == 2 else tuple(batch[:-1])
        return inputs, batch[-1]
    raise ZooError("each sample must be (inputs, target), (*inputs, target) or a dict with 'labels'; "
                   f"got a {type(batch).__name__}")


def unlabel_padding(target: Any, attention_mask: Any) -> Any:
    """Per-token class targets with `IGNORE_INDEX` where `attention_mask` is 0 (padding); others unchanged."""
    if (isinstance(target, torch.Tensor) and isinstance(attention_mask, torch.Tensor) and target.dim() == 2
            and target.shape == attention_mask.shape and not target.is_floating_point()):
        return target.masked_fill(attention_mask == 0, IGNORE_INDEX)
    return target


def forward(model: nn.Module, inputs: Any) -> Any:
    if isinstance(inputs, Mapping):
        return model(**inputs)
    if isinstance(inputs, tuple):
        return model(*inputs)
    return model(inputs)


def logits(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and "logits" in output:
        return cast(torch.Tensor, output["logits"])
    if hasattr(output, "logits"):
        return cast(torch.Tensor, output.logits)
    if isinstance(output, (tuple, list)) and output:
        return cast(torch.Tensor, output[0])
    raise ZooError(f"the model returned a {type(output).__name__}; fit needs a tensor, a tuple starting with one, "
                   "or an object with 'logits'")
