"""Real-time factor of the wav2vec 2.0 base encoder on this CPU, fp32 and bf16.

    python benchmarks/speech.py [--seconds 10] [--batch 1] [--repeats 3] [--threads N] [--device cpu]

Real-time factor (RTF) = wall time of one forward pass / seconds of audio in the batch;
below 1 is faster than real time. One run measures, on the same random 10 s clips and
randomly initialised weights (no download; speed does not depend on the values):

  zoo            zoo.create("wav2vec2_base"): torchaudio's modules behind zoo's encoder
  torchaudio     torchaudio.models.wav2vec2_base(): the baseline zoo builds on
  transformers   transformers.Wav2Vec2Model(Wav2Vec2Config()) (if installed): the same architecture

each in fp32 and in bf16 (``torch.autocast``), under ``torch.inference_mode``. After one
warm-up pass each, the six settings take turns for `--repeats` rounds (so a change in
machine load affects them alike); the median per setting is reported with its ratio to
the torchaudio fp32 baseline.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

import zoo


def timed(forwards: dict[tuple[str, str], Callable[[], object]], repeats: int) -> dict[tuple[str, str], float]:
    """Median seconds per setting; the settings take turns, so a change in machine load hits them alike."""
    for forward in forwards.values():
        forward()  # warm-up: allocator, kernels, oneDNN primitives
    times: dict[tuple[str, str], list[float]] = {key: [] for key in forwards}
    for _ in range(repeats):
        for key, forward in forwards.items():
            start = time.perf_counter()
            forward()
            times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


def runners(device: str) -> dict[str, Callable[[torch.Tensor], object]]:
    import torchaudio

    ours = zoo.create("wav2vec2_base").eval().to(device)
    baseline = torchaudio.models.wav2vec2_base().eval().to(device)
    out = {"zoo": lambda x: ours(x), "torchaudio": lambda x: baseline(x)}
    try:
        import transformers
    except ImportError:
        return out
    hf = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).eval().to(device)
    out["transformers"] = lambda x: hf(x).last_hidden_state
    return out


def _forward(run: Callable[[torch.Tensor], object], clips: torch.Tensor, precision: str,
             device: str) -> Callable[[], object]:
    def forward() -> object:
        autocast = (torch.autocast(device.split(":")[0], dtype=torch.bfloat16) if precision == "bf16"
                    else contextlib.nullcontext())
        with torch.inference_mode(), autocast:
            return run(clips)

    return forward


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="clip length (default 10)")
    parser.add_argument("--batch", type=int, default=1, help="clips per forward pass (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per setting (default 3)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rate = zoo.get_card("wav2vec2_base").input.sample_rate
    clips = torch.randn(args.batch, int(args.seconds * rate), device=args.device) * 0.1
    audio_seconds = args.batch * args.seconds
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"wav2vec2 base encoder, {args.batch} x {args.seconds:g} s at {rate} Hz, {args.device}, "
          f"{torch.get_num_threads()} thread(s), {platform.processor() or platform.machine()}, "
          f"load average {load:.1f}, torch {torch.__version__}")
    forwards: dict[tuple[str, str], Callable[[], object]] = {}
    for name, run in runners(args.device).items():
        for precision in ("fp32", "bf16"):
            forwards[name, precision] = _forward(run, clips, precision, args.device)
    results = timed(forwards, args.repeats)
    base = results["torchaudio", "fp32"]
    print(f"{'model':<14}{'precision':<11}{'seconds':>9}{'RTF':>8}{'x realtime':>12}{'vs torchaudio fp32':>20}")
    for (name, precision), seconds in results.items():
        rtf = seconds / audio_seconds
        print(f"{name:<14}{precision:<11}{seconds:>9.3f}{rtf:>8.3f}{1 / rtf:>12.1f}{base / seconds:>19.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
