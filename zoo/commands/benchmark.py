"""``zoo benchmark``: inference and training-step speed and memory of models, one table across them.

    zoo benchmark resnet50 convnext_tiny bert_base_uncased --batch 16
    zoo benchmark wav2vec2_base --precision bf16 --threads 8 --json
"""
from __future__ import annotations

import argparse
from typing import Any

from .options import Subcommands, positive_int
from .output import print_json, print_table

PRECISIONS = ("fp32", "bf16", "fp16")  # zoo.benchmarking.PRECISIONS, without importing torch for the parser
COLUMNS = ("model", "batch", "precision", "device", "params_m", "infer_ms", "infer_samples_per_s", "infer_peak_mib",
           "train_ms", "train_samples_per_s", "train_peak_mib")
HEADERS = ("model", "batch", "prec", "device", "params(M)", "infer ms", "infer/s", "infer MiB", "train ms",
           "train/s", "train MiB")


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("benchmark", help="inference and training-step latency, throughput and peak memory",
                       description="Build each model (random weights), make a batch from its card's input spec and "
                                   "time inference and a training step (forward, backward, SGD step): median "
                                   "milliseconds per batch, samples per second and the peak memory each adds.")
    p.add_argument("names", nargs="+", metavar="NAME", help="model names (any modality)")
    p.add_argument("--batch", type=positive_int, default=8, help="batch size (default: %(default)s)")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp32, or bf16/fp16 autocast (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, help="CPU threads torch uses (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="torch.compile the model first")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda when there is one)")
    p.add_argument("--steps", type=positive_int, default=5, help="timed steps per phase (default: %(default)s)")
    p.add_argument("--warmup", type=positive_int, default=2, help="untimed steps first (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print only JSON: a list with one object per model")
    p.set_defaults(func=cmd_benchmark)


def cmd_benchmark(args: argparse.Namespace) -> int:
    import torch  # reason: the command measures torch models; imported only when it runs

    from ..benchmarking import benchmark  # reason: imports torch, only once the command runs

    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[dict[str, Any]] = []
    for name in args.names:
        result = benchmark(name, batch=args.batch, precision=args.precision, device=args.device,
                           compile=args.compile, warmup=args.warmup, steps=args.steps)
        rows.append(result.to_dict())
    if args.json:
        print_json(rows)
        return 0
    print_table(HEADERS, [[row[column] for column in COLUMNS] for row in rows], right=HEADERS[4:] + ("batch",))
    print(f"threads: {torch.get_num_threads()}; times are medians of {args.steps} steps after {args.warmup} "
          "warm-up steps; memory is what each phase adds at its peak")
    return 0
