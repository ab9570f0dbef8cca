"""Speed of a model on this machine: inference and training-step latency, throughput and peak memory.

Inputs are made from the model's card (`zoo.exports.inputs`), so every modality is measured the
same way. Times are medians over timed steps after warm-up steps. Peak memory is what the run
adds: ``torch.cuda.max_memory_allocated`` on a GPU; on the CPU, the largest growth of the
process's resident memory, sampled every few milliseconds while the steps run.

This module imports torch; ``zoo benchmark`` imports it only when it runs.
"""
from __future__ import annotations

import contextlib
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from .cards import card_of
from .errors import InvalidArgumentError
from .exports.inputs import ExampleInputs, example_inputs
from .exports.parity import first_tensor
from .factory import create
from .speed import autocast, default_device

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TEXT_TOKENS = 128
_SAMPLE_SECONDS = 0.005


@dataclass(frozen=True)
class BenchmarkResult:
    """One model's figures: milliseconds per batch, samples per second and peak memory (MiB), per phase."""

    model: str
    modality: str
    batch: int
    precision: str
    device: str
    params_m: float
    infer_ms: float
    infer_samples_per_s: float
    infer_peak_mib: float
    train_ms: float
    train_samples_per_s: float
    train_peak_mib: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def benchmark(name: str, *, batch: int = 8, precision: str = "fp32", device: str | None = None,
              compile: bool = False, warmup: int = 2, steps: int = 5) -> BenchmarkResult:
    """Measure the model of card `name` (random weights) on inputs made from its card."""
    if precision not in PRECISIONS:
        raise InvalidArgumentError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    where = torch.device(device) if device else default_device()
    model = create(name, pretrained=False).to(where)
    card = card_of(model)
    inputs = _inputs(model, batch)
    tensors = tuple(t.to(where) for t in inputs.tensors)
    run: nn.Module | Callable[..., Any] = torch.compile(model) if compile else model
    model.eval()

    def infer() -> None:
        with torch.inference_mode(), autocast(precision, where):
            run(*tensors)

    infer_ms, infer_peak = _timed(infer, where, warmup, steps)
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-6)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision, where):
            loss = first_tensor(run(*tensors)).float().pow(2).mean()
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    train_ms, train_peak = _timed(train_step, where, warmup, steps)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    return BenchmarkResult(card.name, card.modality, batch, precision, where.type, round(params, 2),
                           _figure(infer_ms), _figure(batch / infer_ms * 1000), round(infer_peak, 1),
                           _figure(train_ms), _figure(batch / train_ms * 1000), round(train_peak, 1))


def _figure(value: float) -> float:
    """Four significant digits: a latency under a millisecond keeps its precision, so the figures agree."""
    return float(f"{value:.4g}")


def _inputs(model: nn.Module, batch: int) -> ExampleInputs:
    card = card_of(model)
    length = TEXT_TOKENS if card.modality == "text" else None
    return example_inputs(model, card, batch=batch, length=length)


def _timed(step: Callable[[], None], device: torch.device, warmup: int, steps: int) -> tuple[float, float]:
    """Median milliseconds of `step` over `steps` runs after `warmup`, and the peak memory added (MiB)."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    times = []
    with _peak_memory(device) as peak:
        for _ in range(steps):
            start = time.perf_counter()
            step()
            _synchronize(device)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), peak[0]


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _peak_memory(device: torch.device) -> Iterator[list[float]]:
    """Yields a one-item list that holds, after the block, the peak memory the block added in MiB."""
    peak = [0.0]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        yield peak
        peak[0] = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        return
    before = _resident_bytes()
    highest = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(_SAMPLE_SECONDS):
            highest[0] = max(highest[0], _resident_bytes())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield peak
    finally:
        done.set()
        sampler.join()
        highest[0] = max(highest[0], _resident_bytes())
        peak[0] = (highest[0] - before) / 2**20


def _resident_bytes() -> int:
    """The process's resident memory (Linux /proc; elsewhere the peak so far, from getrusage)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource  # reason: Unix only; the fallback where /proc is missing

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024
