"""Export time, and eager PyTorch vs onnxruntime vs the torch.export program: median latency, one run.

    python benchmarks/export.py [--batch 8] [--steps 10] [--threads N] [--models resnet50,bert,wav2vec2]

resnet50 (random weights, 224x224), a tiny BERT classifier (2 layers, width 128, 128 tokens) and
wav2vec2-base (random weights, 1 s at 16 kHz). Ratios are eager's latency over each runtime's (above 1:
faster than eager). Nothing is downloaded.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch

import zoo
from zoo.exports import export
from zoo.exports.inputs import example_inputs
from zoo.exports.runtime import OnnxModel

MODELS: dict[str, tuple[str, dict[str, Any], int | None]] = {
    "resnet50": ("resnet50", {}, None),
    "bert": ("bert_classifier", {"num_layers": 2, "hidden_size": 128, "num_heads": 2, "intermediate_size": 512,
                                 "num_classes": 2}, 128),
    "wav2vec2": ("wav2vec2_base", {}, None),
}


def median_ms(run: Callable[[], Any], steps: int) -> float:
    run()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(key: str, batch: int, steps: int) -> dict[str, float]:
    name, options, length = MODELS[key]
    model = zoo.create(name, pretrained=False, **options).eval()
    inputs = example_inputs(model, zoo.cards.card_of(model), batch=batch, length=length)
    row: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        start = time.perf_counter()
        export(model, f"{tmp}/onnx", format="onnx")
        row["onnx_export_s"] = time.perf_counter() - start
        start = time.perf_counter()
        export(model, f"{tmp}/ep", format="exported-program")
        row["program_export_s"] = time.perf_counter() - start
        onnx = OnnxModel(f"{tmp}/onnx/model.onnx")
        program = torch.export.load(f"{tmp}/ep/model.pt2").module()
        for label, runner in (("eager", model), ("onnxruntime", onnx), ("program", program)):
            row[f"{label}_ms"] = median_ms(lambda runner=runner: runner(*inputs.tensors), steps)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--models", default=",".join(MODELS))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, median of {args.steps} steps, {torch.get_num_threads()} threads, CPU, fp32")
    print(f"{'model':10} {'onnx export':>12} {'program export':>15} {'eager ms':>9} {'ort ms':>8} {'program ms':>11} "
          f"{'ort x':>6} {'program x':>10}")
    for key in args.models.split(","):
        r = measure(key, args.batch, args.steps)
        print(f"{key:10} {r['onnx_export_s']:11.1f}s {r['program_export_s']:14.1f}s {r['eager_ms']:9.1f} "
              f"{r['onnxruntime_ms']:8.1f} {r['program_ms']:11.1f} {r['eager_ms'] / r['onnxruntime_ms']:5.2f}x "
              f"{r['eager_ms'] / r['program_ms']:9.2f}x")


if __name__ == "__main__":
    main()
