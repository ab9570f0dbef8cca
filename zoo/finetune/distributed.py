"""Distributed data parallel for the trainer: started by ``torchrun``, or by a test that sets the same variables.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
`setup` reads them and joins the process group (gloo on CPU, nccl on GPU). A single process
needs none of this and gets a `Context` with ``world_size == 1``.

On several machines the global rank (``RANK``) says who writes the run's files (rank 0 only)
and the local rank (``LOCAL_RANK``, the process's place on its own machine) says which GPU a
process takes and who fills a machine's own caches. Nothing assumes the machines share a disk:
what every process must read from the run folder (a checkpoint to resume from) is read by rank 0
and sent to the others (`from_main`).
"""
from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

T = TypeVar("T")


@dataclass(frozen=True)
class Context:
    """Where this process sits in a run: its rank, the number of processes and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # True when `setup` created the process group (and `teardown` ends it)

    @property
    def is_main(self) -> bool:
        """The first process of the whole run: the one that writes the run's files."""
        return self.rank == 0

    @property
    def is_local_main(self) -> bool:
        """The first process on this machine: the one that fills the machine's own caches."""
        return self.local_rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1


def launched_distributed() -> bool:
    """Whether this process was started as one of several (``torchrun`` or an equivalent)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 or (dist.is_available() and dist.is_initialized())


def setup(device: str | torch.device | None = None) -> Context:
    """Join the process group when started under ``torchrun``; choose this process's device."""
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = local_rank_of(rank)
        return Context(rank, world, local_rank, _device(device, local_rank, world), owns_group=False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Context(device=_device(device, 0, 1))
    rank = int(os.environ["RANK"])
    local_rank = local_rank_of(rank)
    chosen = _device(device, local_rank, world)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=rank, world_size=world)
    if backend == "gloo":
        _settle_gloo_at_exit()
    return Context(rank, world, local_rank, chosen, owns_group=True)


_SETTLE_REGISTERED = False


def _settle_gloo_at_exit() -> None:
    """Register, once, `settle_threads` to run when the interpreter exits.

    Once a ``DistributedDataParallel`` has been built, torch keeps the gloo group (and its worker
    threads) alive after ``destroy_process_group``. A worker that releases its last collective's
    tensors needs the GIL; if the interpreter is already shutting down by then, the process aborts
    ("terminate called without an active exception") after the run has finished, torchrun reports
    the node as failed, and the other machines wait out its exit barrier. At exit, while the
    interpreter is still whole, the workers are given the time to finish.
    """
    global _SETTLE_REGISTERED
    if not _SETTLE_REGISTERED:
        atexit.register(settle_threads)
        _SETTLE_REGISTERED = True


def settle_threads(limit: float = 1.0) -> bool:
    """Release the GIL until no other thread of this process is running (at most `limit` seconds).

    True when they all went idle. Outside Linux (no ``/proc/self/task``) it waits one short pause.
    """
    deadline = time.monotonic() + limit
    while True:
        time.sleep(0.01)  # the GIL is free meanwhile: a worker waiting for it gets it
        if not _other_threads_running() or time.monotonic() >= deadline:
            return not _other_threads_running()


def _other_threads_running() -> bool:
    me = threading.get_native_id()
    try:
        tasks = [int(tid) for tid in os.listdir("/proc/self/task")]
    except OSError:
        return False
    for tid in tasks:
        if tid == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii", errors="replace") as stat:
                state = stat.read().rsplit(")", 1)[-1].split()[0]
        except (OSError, IndexError):
            continue
        if state == "R":
            return True
    return False


def teardown(context: Context) -> None:
    if context.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def local_rank_of(rank: int) -> int:
    """This process's place on its machine: ``LOCAL_RANK`` (torchrun), else ``SLURM_LOCALID`` (srun), else `rank`."""
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        if os.environ.get(name, "").strip().isdigit():
            return int(os.environ[name])
    return rank


def _device(device: str | torch.device | None, local_rank: int, world: int) -> torch.device:
    if device is not None:
        chosen = torch.device(device)
        if chosen.type == "cuda" and chosen.index is None and world > 1:
            return torch.device("cuda", local_rank)  # "cuda" under torchrun: this process's own GPU on its machine
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count()) if world > 1 else torch.device("cuda")
    return torch.device("cpu")


def wrap_ddp(model: torch.nn.Module, context: Context) -> torch.nn.Module:
    """`model` in ``DistributedDataParallel``, which syncs the gradients of what is trainable now."""
    device_ids = [context.device] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_sum(tensor: torch.Tensor, context: Context) -> torch.Tensor:
    """Sum a tensor over all processes (in place; a no-op on one process)."""
    if context.is_distributed:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def barrier(context: Context) -> None:
    if context.is_distributed:
        dist.barrier()


@contextlib.contextmanager
def local_main_first(context: Context) -> Iterator[None]:
    """Run the block on this machine's first process, then on the others (a per-machine cache is filled once).

    Every process takes part in the same one barrier, so the processes of all machines stay in step.
    """
    if not context.is_local_main:
        barrier(context)
    yield
    if context.is_local_main:
        barrier(context)


def from_main(read: Callable[[], T], context: Context) -> T:
    """`read()` run on the first process and its result (or its error) handed to every process.

    The run folder need not be on a disk every machine sees: only rank 0 reads it. An error
    raised there is raised on every process, so none waits for the others forever.
    """
    if not context.is_distributed:
        return read()
    box: list[Any] = [None]
    failure: Exception | None = None
    if context.is_main:
        try:
            box[0] = ("value", read())
        except Exception as exc:  # noqa: BLE001  # raised again below, on every process
            failure = exc
            box[0] = ("error", _sendable(exc))
    dist.broadcast_object_list(box, src=0, device=_object_device(context))
    if failure is not None:
        raise failure
    kind, value = box[0]
    if kind == "error":
        raise value
    return value  # type: ignore[no-any-return]


def _sendable(exc: Exception) -> Exception:
    """`exc`, or a RuntimeError with its message when it cannot be pickled to the other processes."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001  # any pickling failure
        return RuntimeError(f"{type(exc).__name__} on the first process: {exc}")
    return exc


def _object_device(context: Context) -> torch.device | None:
    """Where `broadcast_object_list` stages its bytes: the GPU under nccl, the CPU under gloo."""
    return context.device if context.device.type == "cuda" else None


def broadcast_flag(flag: bool, context: Context) -> bool:
    """True on every process when any process says True (a stop request reaches them all)."""
    if not context.is_distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


class ResumableSampler(torch.utils.data.Sampler[int]):
    """A seeded shuffle, split across processes, that can start part-way into an epoch.

    The order of epoch ``e`` depends only on ``(seed, e)``, so a resumed run sees the same
    samples in the same order as one that never stopped. With several processes each takes
    every ``world_size``-th index of the shared order (padded so every process gets as many);
    one global batch of ``world_size * batch_size`` samples is then the same set a single
    process would see with that batch size.
    """

    def __init__(self, length: int, *, shuffle: bool, seed: int, rank: int = 0, world_size: int = 1,
                 pad: bool = True) -> None:
        self.length = length
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.pad = pad
        self.epoch = 0
        self.start = 0  # samples of this process's share already seen this epoch

    def set_position(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _order(self) -> list[int]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.length, generator=generator).tolist()
        else:
            order = list(range(self.length))
        if self.pad and self.world_size > 1 and self.length % self.world_size:
            extra = self.world_size - self.length % self.world_size
            order += order[:extra]
        return order[self.rank::self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order()[self.start:])

    def __len__(self) -> int:
        return max(0, self.share() - self.start)

    def share(self) -> int:
        """How many samples this process sees in a whole epoch."""
        if self.world_size == 1:
            return self.length
        if self.pad:
            return -(-self.length // self.world_size)
        return len(range(self.rank, self.length, self.world_size))
