"""A folder of full-size photos through zoo's image loading and through the plain torchvision loop.

The photos (500 JPEGs of 2000x1500 by default, quality 90) are made once into a folder and
reused: smooth random backgrounds, a few distracting blobs, light noise, and in each one large
shape of one of the ten classes zoo's demo weights were trained on (one class folder each).

* torchvision: ``torchvision.datasets.ImageFolder(root, transform=ResNet50_Weights.IMAGENET1K_V2.transforms())``
  and a ``DataLoader``: full decode, resize of the whole photo, crop, normalize.
* zoo: ``zoo.data.dataset_for(card, root)`` (`zoo.data.fast_images`: JPEGs decoded at reduced size,
  only the crop resized, as 8-bit pixels) and a ``DataLoader``; the same workers and batch.

Speed: images per second of the loader alone and of the loader feeding a resnet50 forward
(random weights, eval, inference mode, fp32), the two pipelines alternating over the repeats;
the best repeat is shown, with the CPU seconds each image took (this process and its workers),
which other load on a shared machine changes far less than the wall clock.

Agreement: zoo's demo weights (ShuffleNetV2 x0.5 trained on these ten shapes, see zoo.demo) are
a model whose top-1 depends on the picture's content, unlike random weights, whose top-1 is
nearly the same class for every photo. Both pipelines prepare every photo, with the demo card's
input (resize 56, crop 48) and with resnet50's (resize 232, crop 224, the speed run's), and the
table shows how often top-1 agrees, with what makes that figure meaningful: accuracy against
the drawn class, how many classes the model predicts, and how many photos are close calls
(top-1 and top-2 probabilities within 0.1 of each other: where small pixel changes could flip it).

    python benchmarks/images.py                       # 500 photos, batch 32, workers by zoo's rule
    python benchmarks/images.py --count 100 --repeats 1 --workers 2
"""
from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import DataLoader

import zoo
from zoo.cards import card_of
from zoo.data.fast_images import loader_workers
from zoo.demo import OUTLINES, PRETRAIN_CLASSES

TARGET_SPEEDUP = 2.0
TARGET_AGREEMENT = 0.995
DEMO_WEIGHTS = Path(zoo.__file__).parent / "demo_weights"


# ---------------------------------------------------------------------------- photos


def photo(kind: str, rng: np.random.Generator, width: int, height: int) -> Image.Image:
    """A `width` x `height` picture: smooth background, a few blobs, one large shape of `kind`, light noise."""
    grid = rng.integers(0, 256, size=(int(rng.integers(3, 7)), int(rng.integers(3, 7)), 3), dtype=np.uint8)
    image = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
    pen = ImageDraw.Draw(image)
    short = min(width, height)
    for _ in range(4):
        x, y, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.02, 0.08) * short
        pen.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    background = np.asarray(image)[height // 2, width // 2].astype(int)
    colour = rng.integers(0, 256, 3)
    while np.abs(colour - background).sum() < 180:
        colour = rng.integers(0, 256, 3)
    radius = short * rng.uniform(0.22, 0.38)
    cx, cy = width / 2 + short * rng.uniform(-0.1, 0.1), height / 2 + short * rng.uniform(-0.1, 0.1)
    angle = math.radians(rng.uniform(-25, 25))
    cos, sin = math.cos(angle), math.sin(angle)
    for i, polygon in enumerate(OUTLINES[kind]()):
        points = [(cx + radius * (x * cos - y * sin), cy + radius * (x * sin + y * cos)) for x, y in polygon]
        fill = colour if i == 0 else background
        pen.polygon(points, fill=tuple(int(v) for v in fill))
    noisy = np.asarray(image, dtype=np.int16) + rng.normal(0, 4, (height, width, 3)).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def make_photos(root: Path, count: int, width: int, height: int) -> Path:
    """``root/<class>/*.jpg``, made once (a folder already holding `count` photos is reused)."""
    if len(list(root.glob("*/*.jpg"))) == count:
        return root
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for i in range(count):
        kind = PRETRAIN_CLASSES[i % len(PRETRAIN_CLASSES)]
        (root / kind).mkdir(parents=True, exist_ok=True)
        photo(kind, rng, width, height).save(root / kind / f"{i:05d}.jpg", quality=90)
    print(f"made {count} photos of {width}x{height} in {root} ({time.perf_counter() - started:.0f} s)")
    return root


# ---------------------------------------------------------------------------- loaders


def torchvision_loader(root: Path, batch: int, workers: int) -> DataLoader[Any]:
    from torchvision.datasets import ImageFolder
    from torchvision.models import ResNet50_Weights

    dataset = ImageFolder(str(root), transform=ResNet50_Weights.IMAGENET1K_V2.transforms())
    return DataLoader(dataset, batch_size=batch, num_workers=workers, pin_memory=torch.cuda.is_available())


def zoo_loader(root: Path, batch: int, workers: int, spec: Any = None) -> DataLoader[Any]:
    dataset = zoo.data.dataset_for(zoo.get_card("resnet50"), root) if spec is None else \
        zoo.data.folders.image_folder(root, spec)
    return DataLoader(dataset, batch_size=batch, num_workers=workers, pin_memory=torch.cuda.is_available())


def reference_loader(root: Path, batch: int, spec: Any) -> DataLoader[Any]:
    """zoo's reference path (`image_transform` on the whole decoded file) for the same `spec`."""
    from torchvision.datasets import ImageFolder

    from zoo.data.images import image_transform

    dataset = ImageFolder(str(root), transform=image_transform(spec))
    return DataLoader(dataset, batch_size=batch, num_workers=0)


# ---------------------------------------------------------------------------- speed


def timed(make: Callable[[], Iterable[Any]], step: Callable[[torch.Tensor], Any]) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds of this process and its finished workers, images) of one pass."""
    before, started = os.times(), time.perf_counter()
    images = 0
    for inputs, _ in make():
        step(inputs)
        images += len(inputs)
    wall = time.perf_counter() - started
    after = os.times()
    cpu = sum(after[:4]) - sum(before[:4])
    return wall, cpu, images


def speed(root: Path, batch: int, workers: int, repeats: int, device: torch.device, with_model: bool) -> None:
    model = zoo.create("resnet50").eval().to(device)

    def forward(inputs: torch.Tensor) -> None:
        with torch.inference_mode():
            model(inputs.to(device, non_blocking=True))
        if device.type == "cuda":
            torch.cuda.synchronize()

    loaders = {"torchvision": lambda: torchvision_loader(root, batch, workers),
               "zoo": lambda: zoo_loader(root, batch, workers)}
    print(f"\nspeed: batch {batch}, {workers} workers, {device}, {torch.get_num_threads()} threads, best of {repeats}")
    print(f"{'pipeline':<12} {'run':<18} {'images/s':>9} {'CPU ms/image':>13}")
    runs: list[tuple[str, Callable[[torch.Tensor], Any]]] = [("loader only", lambda _: None)]
    runs += [("+ resnet50 fwd", forward)] if with_model else []
    for run, step in runs:
        best: dict[str, tuple[float, float]] = {}
        for _ in range(repeats):
            for name, make in loaders.items():
                wall, cpu, images = timed(make, step)
                rate, cost = images / wall, cpu / images * 1000
                if name not in best or rate > best[name][0]:
                    best[name] = (rate, cost)
        for name, (rate, cost) in best.items():
            print(f"{name:<12} {run:<18} {rate:9.1f} {cost:13.1f}")
        ratio = best["zoo"][0] / best["torchvision"][0]
        cpu_ratio = best["torchvision"][1] / best["zoo"][1]
        print(f"{'zoo / tv':<12} {run:<18} {ratio:8.2f}x {cpu_ratio:12.2f}x   (target {TARGET_SPEEDUP}x)")


# ---------------------------------------------------------------------------- agreement


def agreement(root: Path, batch: int) -> None:
    model = zoo.create(f"local-dir:{DEMO_WEIGHTS}").eval()
    specs = {"demo card (56/48)": card_of(model).input_for(),
             "resnet50 (232/224)": zoo.get_card("resnet50").input_for()}
    print("\nagreement: zoo's demo weights (classes as the photo folders: the ten demo pretraining shapes), "
          "top-1 of the fast and the reference pipeline")
    print(f"{'input':<20} {'agree':>7} {'accuracy':>9} {'classes':>8} {'largest':>8} {'close':>6} "
          f"{'max |dx|':>9} {'mean |dx|':>10}")
    for name, spec in specs.items():
        fast, slow, target, close, worst, mean, count = [], [], [], 0, 0.0, 0.0, 0
        with torch.inference_mode():
            for (x, y), (ref, _) in zip(zoo_loader(root, batch, 0, spec), reference_loader(root, batch, spec)):
                a, b = model(x).softmax(-1), model(ref).softmax(-1)
                fast.append(a.argmax(-1))
                slow.append(b.argmax(-1))
                target.append(y)
                top2 = b.topk(2, dim=-1).values
                close += int((top2[:, 0] - top2[:, 1] < 0.1).sum())
                diff = (x - ref).abs()
                worst, mean, count = max(worst, float(diff.max())), mean + float(diff.mean()) * len(x), count + len(x)
        f, s, t = torch.cat(fast), torch.cat(slow), torch.cat(target)
        agree = float((f == s).float().mean())
        accuracy = float((s == t).float().mean())
        largest = float(torch.bincount(s).max()) / len(s)
        print(f"{name:<20} {agree:7.2%} {accuracy:9.1%} {len(s.unique()):8d} {largest:8.1%} {close:6d} "
              f"{worst:9.4f} {mean / count:10.5f}")
    print(f"(target agreement {TARGET_AGREEMENT:.1%}; 'close': photos whose reference top-2 probabilities are "
          "within 0.1; |dx| in normalized units)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--size", default="2000x1500", help="WIDTHxHEIGHT of the photos")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, help="DataLoader workers for both (default: zoo's loader_workers)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "zoo-benchmark-photos")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--loader-only", action="store_true", help="time the loaders without the resnet50 forward")
    parser.add_argument("--skip-agreement", action="store_true")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    root = make_photos(args.dir / f"{args.count}x{width}x{height}", args.count, width, height)
    workers = loader_workers(args.count) if args.workers is None else args.workers
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not args.skip_speed:
        speed(root, args.batch, workers, args.repeats, device, not args.loader_only)
    if not args.skip_agreement:
        agreement(root, args.batch)


if __name__ == "__main__":
    main()
