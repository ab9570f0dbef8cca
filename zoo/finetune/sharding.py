"""Sharded data parallel (``sharding="fsdp"``): each process keeps a slice of every weight and its training state.

For models whose weights, gradients and optimizer state do not fit one device together. It uses
torch's ``fully_shard`` (FSDP2): the blocks of the model (the items of every ``nn.Sequential``
and ``nn.ModuleList`` that hold weights) are sharded one by one, then the whole model, so a
forward gathers one block's weights at a time. It runs on CPU processes (gloo) as on GPUs (nccl).

Rank 0's weights are sent to every process before sharding (as ``DistributedDataParallel`` does),
so a head drawn at random on each process starts the same everywhere. Checkpoints hold the full,
gathered state, the same model state an unsharded run writes; the best model is saved from a
plain copy that only rank 0 fills.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import Any, cast

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard

from .distributed import Context

SHARDINGS = ("fsdp",)
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)
_TWIN = "_zoo_unsharded_twin"  # the model's plain copy on the meta device, kept for saving


def is_sharded(model: nn.Module) -> bool:
    return isinstance(model, FSDPModule)


def shard(model: nn.Module, context: Context) -> None:
    """Shard `model` in place over the processes of `context` (its parameters become DTensors)."""
    for tensor in [*model.parameters(), *model.buffers()]:  # every process starts from rank 0's weights
        dist.broadcast(tensor.data, src=0)
    twin = _meta_twin(model)
    mesh = init_device_mesh(context.device.type, (context.world_size,))
    for block in reversed(blocks(model)):  # inner blocks first, as fully_shard asks
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    object.__setattr__(model, _TWIN, twin)  # not a submodule: outside the state dict and parameters


def blocks(model: nn.Module) -> list[nn.Module]:
    """The units sharded one by one: items of ``nn.Sequential``/``nn.ModuleList`` containers that hold weights."""
    found: dict[int, nn.Module] = {}
    for module in model.modules():
        if isinstance(module, (nn.Sequential, nn.ModuleList)):
            for item in module:
                if any(True for _ in item.parameters()):
                    found.setdefault(id(item), item)
    return list(found.values())


def full_model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state on the CPU, gathered on rank 0 (an empty dict elsewhere); every process calls it."""
    return cast(dict[str, torch.Tensor], get_model_state_dict(model, options=_FULL))


def full_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The optimizer's whole state on the CPU, keyed by parameter name, gathered on rank 0; every process calls it."""
    return dict(get_optimizer_state_dict(model, optimizer, options=_FULL))


def load_full_state(model: nn.Module, optimizer: torch.optim.Optimizer, model_state: dict[str, Any],
                    optimizer_state: dict[str, Any]) -> None:
    """Put a full (gathered) model and optimizer state back into the shards; every process calls it with the state."""
    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, model_state, options=options)
    set_optimizer_state_dict(model, optimizer, optimizer_state, options=options)


@contextlib.contextmanager
def unsharded_copy(model: nn.Module, context: Context) -> Iterator[nn.Module | None]:
    """A plain module with the whole model's weights on rank 0's CPU (None on the others), for saving.

    Every process must enter it: gathering the weights is collective.
    """
    state = full_model_state(model)
    if not context.is_main:
        yield None
        return
    twin: nn.Module = getattr(model, _TWIN)
    twin.to_empty(device="cpu")
    twin.load_state_dict(state)
    try:
        yield twin
    finally:
        twin.to("meta")  # give the memory back


def _meta_twin(model: nn.Module) -> nn.Module:
    """A copy of `model` whose tensors live on the meta device (no memory), with its card and attributes."""
    memo: dict[int, Any] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        memo[id(tensor)] = (nn.Parameter(torch.empty_like(tensor, device="meta"), tensor.requires_grad)
                            if isinstance(tensor, nn.Parameter) else torch.empty_like(tensor, device="meta"))
    return copy.deepcopy(model, memo)
