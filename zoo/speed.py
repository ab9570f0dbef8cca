"""Choices that make inference fast on the machine it runs on: threads, batch size, precision, memory format.

Each choice keeps results within the tolerance docs/finetune.md states ("Speed by default"):

- threads: torch's default is one per logical CPU; when the user set none (no ``--threads``, no
  ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``, torch's count untouched) zoo uses one per *physical* core
  it may run on, since two threads on one core's hyperthreads contend for the same units.
- precision: ``auto`` is bf16 on a CUDA device that runs it natively, else fp32 (so fp32 on every
  CPU: results unchanged there). fp16 and bf16 are taken only when asked for or native.
- memory format: channels_last for convolutional image models on CUDA, where it is faster; on a CPU
  torch's default layout (channels_last is not reliably faster there).
- batch size: `inference_batch_size` - larger on a GPU, where a batch fills the device.

`speed_line` says in one line what was chosen, e.g. ``using 2 threads, batch 64, fp32, channels_last``.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import InvalidArgumentError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
CPU_BATCH = 64  # inputs per forward pass on a CPU: larger batches gain little there and cost memory
GPU_BATCH = 128  # on a GPU, where small batches leave the device idle
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_DEFAULT_THREADS = torch.get_num_threads()  # torch's own count, read before anyone changes it


@dataclass(frozen=True)
class SpeedChoices:
    """What a command runs with; `speed_line` describes it."""

    threads: int
    batch_size: int
    precision: str  # "fp32", "bf16" or "fp16", resolved from "auto"
    channels_last: bool

    def line(self) -> str:
        return speed_line(self)


def speed_line(choices: SpeedChoices) -> str:
    layout = ", channels_last" if choices.channels_last else ""
    threads = f"{choices.threads} thread{'s' if choices.threads != 1 else ''}"
    return f"using {threads}, batch {choices.batch_size}, {choices.precision}{layout}"


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (logical CPUs where Linux does not say)."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            cores.add((package, (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return max(len(cores), 1)


def threads_set_by_user() -> bool:
    """Whether the thread count was chosen already: an environment variable, or torch's count changed."""
    return any(os.environ.get(name) for name in THREAD_VARIABLES) or torch.get_num_threads() != _DEFAULT_THREADS


def choose_threads(requested: int | None = None) -> int:
    """Set torch's CPU threads: `requested` when given (and above 0), else one per physical core unless the user
    set a count already; the count in use."""
    if requested is not None and requested < 0:
        raise InvalidArgumentError(f"threads must be 0 (automatic) or more, got {requested}")
    if requested:
        torch.set_num_threads(requested)
    elif not threads_set_by_user():
        torch.set_num_threads(min(physical_cores(), torch.get_num_threads()))
    return torch.get_num_threads()


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 where `device` runs it natively (CUDA with bf16), else fp32; others as given."""
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def native_bf16(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """Autocast to the resolved `precision` (``fp32``: none)."""
    resolved = resolve_precision(precision, device)
    if resolved == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=DTYPES[resolved])


def is_conv_model(model: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in model.modules())


def wants_channels_last(model: nn.Module, device: torch.device, requested: bool | None = None) -> bool:
    """`requested` when given; by default channels_last for convolutional models on CUDA."""
    if requested is not None:
        return requested
    return device.type == "cuda" and is_conv_model(model)


def inference_batch_size(device: torch.device, requested: int | None = None) -> int:
    """`requested` when given; else `GPU_BATCH` on a GPU and `CPU_BATCH` on a CPU."""
    if requested is not None:
        return requested
    return GPU_BATCH if device.type == "cuda" else CPU_BATCH


def default_device() -> torch.device:
    """Where zoo's trainer runs by default: the GPU when there is one."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def choose(model: nn.Module, *, threads: int | None = None, batch_size: int | None = None,
           precision: str = "auto", channels_last: bool | None = None,
           device: torch.device | None = None) -> SpeedChoices:
    """Set the threads and decide batch size, precision and memory format for running `model` on `device`."""
    where = device if device is not None else model_device(model)
    return SpeedChoices(threads=choose_threads(threads), batch_size=inference_batch_size(where, batch_size),
                        precision=resolve_precision(precision, where),
                        channels_last=wants_channels_last(model, where, channels_last))
