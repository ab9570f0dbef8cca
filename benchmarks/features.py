"""Multi-scale feature maps: zoo's ``features_only`` forward against timm's, same process.

For each model (resnet50 and convnext_tiny by default) three modules are built, all random,
``pretrained=False``, nothing downloaded:

* zoo:      ``zoo.create(name, features_only=True)``, every stage the card declares
* timm:     ``timm.create_model(name, features_only=True)``, every stage timm declares
* backbone: ``zoo.create(name, num_classes=0)``, the same built model called directly (no hooks,
            pooling included): what zoo's wrapper would cost if it cost nothing

Where the weight layouts match (resnet50) zoo's random weights are loaded into timm and the maps
are checked to agree; otherwise (convnext_tiny) timm keeps its own random init and only the times
are compared. Each forward runs under ``torch.inference_mode`` in eval mode, in fp32; the calls
alternate (zoo, timm, backbone, then the next order), so load changes hit all alike, and the
median of the repeats is reported. The target is zoo <= 1.02x timm.

On a shared, busy machine wall-clock times swing with the other load; ``--clock cpu --threads 1``
times the process's CPU time on one thread instead, which the other load changes far less.

    python benchmarks/features.py                          # batch 8 at 224, CPU, wall clock
    python benchmarks/features.py --clock cpu --threads 1  # CPU time of one thread
    python benchmarks/features.py --repeat 5 --models resnet50
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

TARGET = 1.02
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
SAME_LAYOUT = {"resnet50"}  # timm's state dict keys are torchvision's: the same weights load into both


def build(name: str) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module, str]:
    """zoo's features_only module, timm's, zoo's plain backbone (all eval), and how their weights relate."""
    import timm

    import zoo

    torch.manual_seed(0)
    ours = zoo.create(name, features_only=True, pretrained=False).eval()
    theirs = timm.create_model(name, features_only=True, pretrained=False).eval()
    backbone = zoo.create(name, num_classes=0, pretrained=False).eval()
    state = {k.removeprefix("model."): v for k, v in ours.state_dict().items()}
    backbone.load_state_dict(state)
    if name in SAME_LAYOUT:
        theirs.load_state_dict(state)  # strict: the same keys on both sides
        weights = "same weights"
    else:
        weights = "own random init each"
    if ours.feature_info.channels() != theirs.feature_info.channels():
        raise SystemExit(f"{name}: zoo's stages {ours.feature_info.channels()} differ from timm's "
                         f"{theirs.feature_info.channels()}; the comparison would not be like for like")
    return ours, theirs, backbone, weights


def max_difference(first: torch.nn.Module, second: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.inference_mode():
        return max((a - b).abs().max().item() for a, b in zip(first(x), second(x), strict=True))


def time_interleaved(modules: dict[str, torch.nn.Module], x: torch.Tensor, repeat: int, warmup: int,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per forward of each module on `x`, the order rotated every round so no one always runs first."""
    names = list(modules)
    for _ in range(warmup):
        for name in names:
            modules[name](x)
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeat):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            start = clock()
            modules[name](x)
            times[name].append(clock() - start)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet50,convnext_tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: the process's CPU time (use with --threads 1)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import timm

    x = torch.randn(args.batch, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(f"features_only forward, batch {args.batch} x 3 x {args.size} x {args.size}, fp32, eval, inference_mode, "
          f"CPU, {torch.get_num_threads()} threads; {args.clock} clock, median of {args.repeat} interleaved runs")
    print(f"torch {torch.__version__}, timm {timm.__version__}")
    rows = []
    for name in args.models.split(","):
        ours, theirs, backbone, weights = build(name)
        check = f"max |zoo - timm| = {max_difference(ours, theirs, x[:2]):.1e}" if name in SAME_LAYOUT else \
            "maps not compared"
        print(f"{name}: {len(ours.feature_info.out_indices)} stages {ours.feature_info.channels()}, {weights}, "
              f"{check}")
        with torch.inference_mode():
            times = time_interleaved({"zoo": ours, "timm": theirs, "backbone": backbone}, x, args.repeat, args.warmup,
                                     CLOCKS[args.clock])
        rows.append((name, *(statistics.median(times[k]) * 1000 for k in ("zoo", "timm", "backbone"))))
    print()
    print(f"{'model':<15} {'zoo ms':>9} {'timm ms':>9} {'zoo/timm':>9} {'target':>7} {'backbone ms':>12} "
          f"{'zoo/backbone':>13}")
    for name, zoo_ms, timm_ms, backbone_ms in rows:
        ratio = zoo_ms / timm_ms
        print(f"{name:<15} {zoo_ms:>9.1f} {timm_ms:>9.1f} {ratio:>8.3f}x {'<=' + str(TARGET) + 'x':>7} "
              f"{backbone_ms:>12.1f} {zoo_ms / backbone_ms:>12.3f}x")


if __name__ == "__main__":
    main()
