"""Trainer overhead and speed-ups, measured in one run; every number printed with its baseline and the ratio.

1. `zoo.finetune.fit` against a hand-written PyTorch loop: same model, data, optimizer and
   batch size; seconds per optimizer step (target: at most 1.02x).
2. bf16 and fp16 autocast and channels_last against fp32 with the trainer (CPU; reported).
3. Two DDP processes (torchrun, gloo) against one process over the same epoch (reported).
4. The cost per step of the training options: gradient accumulation and EMA of the weights against
   a run without them, and of the per-step metrics (the epoch meter's update) against a step.

    python benchmarks/trainer.py [all|overhead|precision|ddp|options] [--model shufflenet_v2_x0_5] [--size 64]
                                 [--steps 30] [--repeats 3] [--threads N]

Repetitions alternate between the contenders and the median is reported, so a busy machine
slows both sides alike. On a machine shared with other jobs, ``--cpu-time`` times parts 1, 2 and 4
by this process's CPU time instead of the wall clock (meaningful with ``--threads 1``), which other
jobs sway much less.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

clock = time.perf_counter  # --cpu-time: time.process_time


def make_data(n: int, size: int, classes: int = 10, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, size, size, generator=generator), torch.randint(0, classes, (n,), generator=generator)


def make_model(name: str, classes: int = 10) -> nn.Module:
    import zoo

    torch.manual_seed(0)
    return zoo.create(name, num_classes=classes)


def hand_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int, lr: float) -> float:
    """The loop a user writes by hand. Returns seconds."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=True)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    started = clock()
    for _ in range(epochs):
        for inputs, targets in loader:
            loss = loss_fn(model(inputs), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return clock() - started


def trainer_run(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, epochs: int, lr: float,
                **options) -> float:
    from zoo.finetune import fit

    started = clock()
    fit(model, (x, y), epochs=epochs, lr=lr, batch_size=batch_size, strategy="no_freeze", optimizer="adamw",
        weight_decay=0.01, scheduler=None, verbose=False, **options)
    return clock() - started


def median_per_step(times: list[float], steps: int) -> float:
    return statistics.median(times) / steps


def overhead(args) -> dict:
    x, y = make_data(args.batch_size * args.steps, args.size)
    steps = args.steps * args.epochs
    hand, ours = [], []
    for _ in range(args.repeats):
        hand.append(hand_loop(make_model(args.model), x, y, args.batch_size, args.epochs, 1e-3))
        ours.append(trainer_run(make_model(args.model), x, y, args.batch_size, args.epochs, 1e-3, progress=True))
    return {"hand_s_per_step": median_per_step(hand, steps), "fit_s_per_step": median_per_step(ours, steps)}


def precision_and_layout(args) -> dict:
    x, y = make_data(args.batch_size * args.steps, args.size)
    steps = args.steps * args.epochs
    settings = {"fp32": {"precision": "fp32", "channels_last": False},
                "bf16": {"precision": "bf16", "channels_last": False},
                "fp16": {"precision": "fp16", "channels_last": False},
                "fp32+channels_last": {"precision": "fp32", "channels_last": True},
                "bf16+channels_last": {"precision": "bf16", "channels_last": True}}
    times: dict[str, list[float]] = {k: [] for k in settings}
    for _ in range(args.repeats):
        for name, options in settings.items():
            times[name].append(trainer_run(make_model(args.model), x, y, args.batch_size, args.epochs, 1e-3,
                                           progress=False, **options))
    return {name: median_per_step(t, steps) for name, t in times.items()}


# ---------------------------------------------------------------------------- training options


OPTION_SETTINGS = {"no options": {}, "accumulate_grad_batches=4": {"accumulate_grad_batches": 4},
                   "ema_decay=0.999": {"ema_decay": 0.999}}


def option_costs(args) -> dict:
    """Seconds per batch of fit with each option against none, and the epoch meter's update per step."""
    from zoo.finetune.ema import WeightAverage
    from zoo.finetune.metrics import Meter

    x, y = make_data(args.batch_size * args.steps, args.size)
    batches = args.steps * args.epochs
    times: dict[str, list[float]] = {name: [] for name in OPTION_SETTINGS}
    for _ in range(args.repeats):
        for name, options in OPTION_SETTINGS.items():
            times[name].append(trainer_run(make_model(args.model), x, y, args.batch_size, args.epochs, 1e-3,
                                           progress=True, **options))
    result = {name: median_per_step(t, batches) for name, t in times.items()}
    # the parts alone, timed on their own: the meter's update on a step's outputs, the average's update
    logits, targets = torch.randn(args.batch_size, 10), torch.randint(0, 10, (args.batch_size,))
    loss = torch.tensor(2.3)
    meter, average = Meter(), WeightAverage(make_model(args.model), 0.999)
    calls = 200
    for label, work in (("meter", lambda: meter.update(loss, logits, targets)), ("ema", average.update)):
        samples = []
        for _ in range(args.repeats):
            started = clock()
            for _ in range(calls):
                work()
            samples.append((clock() - started) / calls)
        result[f"{label} update alone"] = statistics.median(samples)
    return result


# ---------------------------------------------------------------------------- DDP


def ddp_worker(args) -> None:
    """One process of the DDP measurement (started by torchrun, or alone for the baseline)."""
    x, y = make_data(args.global_batch * args.steps, args.size)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_process = args.global_batch // world
    model = make_model(args.model)
    # warm-up epoch outside the measurement (allocations, the process group)
    elapsed = trainer_run(model, x, y, per_process, 1 + args.epochs, 1e-3, progress=False,
                          callbacks=[_EpochTimer(args.out)])
    del elapsed


class _EpochTimer:
    """Writes the seconds of every epoch after the first (rank 0 only)."""

    def __init__(self, out: str):
        self.out, self.started, self.times = out, 0.0, []

    def on_epoch_start(self, trainer, epoch):
        self.started = time.perf_counter()

    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch > 0:
            self.times.append(time.perf_counter() - self.started)

    def on_fit_end(self, trainer, result):
        if trainer.context.is_main:
            Path(self.out).write_text(json.dumps(self.times))


def ddp(args) -> dict:
    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    common = ["--model", args.model, "--size", str(args.size), "--steps", str(args.steps),
              "--epochs", str(args.epochs), "--global-batch", str(args.global_batch)]
    single_threads = args.threads or 2  # by default one process uses both cores
    one = f"1 process x {single_threads} thread{'s' if single_threads > 1 else ''}"
    results = {one: [], "2 processes x 1 thread": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            out = Path(tmp) / f"one{repeat}.json"
            env = {**os.environ, "OMP_NUM_THREADS": str(single_threads)}
            env.pop("WORLD_SIZE", None)
            subprocess.run([sys.executable, __file__, "ddp-worker", "--out", str(out)] + common, env=env, check=True)
            results[one] += json.loads(out.read_text())
            out = Path(tmp) / f"two{repeat}.json"
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
                            "--master-addr=127.0.0.1", f"--master-port={free_port()}", __file__, "ddp-worker",
                            "--out", str(out)] + common, env=env, check=True, stdout=subprocess.DEVNULL)
            results["2 processes x 1 thread"] += json.loads(out.read_text())
    return {name: statistics.median(times) for name, times in results.items()}


# ---------------------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description="trainer benchmarks")
    parser.add_argument("mode", nargs="?", default="all",
                        choices=["all", "overhead", "precision", "ddp", "options", "ddp-worker"])
    parser.add_argument("--model", default="shufflenet_v2_x0_5")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--global-batch", type=int, default=64, help="DDP: samples per step over all processes")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps per epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads for parts 1 and 2 (0: torch's default)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time parts 1, 2 and 4 by CPU time (for a shared machine; use with --threads 1)")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    if args.cpu_time:
        global clock
        clock = time.process_time
    if args.threads and args.mode != "ddp-worker":
        torch.set_num_threads(args.threads)
    if args.mode == "ddp-worker":
        ddp_worker(args)
        return

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {torch.get_num_threads()} threads; model {args.model} "
          f"at {args.size}x{args.size}, batch {args.batch_size}, {args.steps} steps x {args.epochs} epochs, "
          f"median of {args.repeats}{', CPU time' if args.cpu_time else ''}")
    if args.mode in ("all", "overhead"):
        r = overhead(args)
        print("\n1. trainer overhead (seconds per optimizer step, AdamW, no scheduler)")
        print(f"   hand-written loop   {r['hand_s_per_step'] * 1000:8.2f} ms")
        print(f"   zoo.finetune.fit    {r['fit_s_per_step'] * 1000:8.2f} ms   "
              f"ratio {r['fit_s_per_step'] / r['hand_s_per_step']:.3f}x (target <= 1.02x)")
    if args.mode in ("all", "precision"):
        r = precision_and_layout(args)
        print("\n2. precision and memory layout with fit (seconds per step)")
        base = r["fp32"]
        for name, value in r.items():
            print(f"   {name:20s} {value * 1000:8.2f} ms   ratio to fp32 {value / base:.3f}x")
    if args.mode in ("all", "ddp"):
        r = ddp(args)
        print(f"\n3. DDP on CPU (seconds per epoch of {args.steps} global batches of {args.global_batch})")
        base = next(iter(r.values()))
        for name, value in r.items():
            print(f"   {name:24s} {value:8.3f} s   ratio to 1 process {value / base:.3f}x")
    if args.mode in ("all", "options"):
        r = option_costs(args)
        base = r["no options"]
        print("\n4. training options with fit (seconds per batch; accumulation steps the optimizer every 4th batch)")
        for name in OPTION_SETTINGS:
            print(f"   {name:28s} {r[name] * 1000:8.2f} ms   ratio to no options {r[name] / base:.3f}x")
        print(f"   {'metrics: Meter.update alone':28s} {r['meter update alone'] * 1000:8.3f} ms   "
              f"{r['meter update alone'] / base:.2%} of a step")
        print(f"   {'EMA: its update alone':28s} {r['ema update alone'] * 1000:8.3f} ms   "
              f"{r['ema update alone'] / base:.2%} of a step")


if __name__ == "__main__":
    main()
