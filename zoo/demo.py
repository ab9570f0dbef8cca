"""The demo behind the README's first command: a dataset and starting weights, made offline.

`make_demo(root)` writes, deterministically and in well under a minute on two CPU cores:

- ``root/shapes/{train,val}/<class>/*.png``: the fine-tune dataset, six classes of filled
  shapes (circle, cross, ring, square, star, triangle) in random colours, sizes, positions
  and rotations on noisy backgrounds, 56x56 pixels; 300 training and 30 validation images
  per class.
- ``root/pretrained/``: starting weights in zoo's ``save_pretrained`` format, copied from
  ``zoo/demo_weights`` (made by ``scripts/make_demo_weights.py`` with `pretrain`). They are a
  real torchvision architecture (ShuffleNetV2 x0.5) trained from random weights, at 48x48
  pixels, on a *different* synthetic task: ten other shape classes (pentagon, hexagon,
  diamond, arrow, crescent, ...). No weights are downloaded; this stands in for ImageNet
  pretraining, the way a user starts from a backbone trained on other classes.

Then `DemoPaths.finetune_command` (``zoo finetune local-dir:ROOT/pretrained --data
ROOT/shapes/train --val ROOT/shapes/val ...``) fine-tunes those weights on the six new classes.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
from PIL import Image, ImageDraw

from .cards import ImageInput, attach_card, card_of
from .factory import create

if TYPE_CHECKING:
    import torch

Point: TypeAlias = tuple[float, float]

FINETUNE_CLASSES = ("circle", "cross", "ring", "square", "star", "triangle")
PRETRAIN_CLASSES = ("arrow", "crescent", "diamond", "ell", "hexagon", "pentagon", "semicircle", "tee",
                    "trapezoid", "wedge")
ARCHITECTURE = "shufflenet_v2_x0_5"
IMAGE_SIZE = 56          # files on disk
INPUT_SIZE = 48          # what the network sees (center crop of 56 for evaluation)
TRAIN_PER_CLASS = 300
VAL_PER_CLASS = 30
PRETRAIN_PER_CLASS = 600
PRETRAIN_EPOCHS = 20
MAX_ROTATION = 25        # degrees either way
SEED = 20240611


@dataclass(frozen=True)
class DemoPaths:
    root: Path
    train: Path
    val: Path
    weights: Path

    def finetune_command(self) -> str:
        """The fine-tune command the README shows (the demo's images are too small for random crops)."""
        return (f"zoo finetune local-dir:{self.weights} --data {self.train} --val {self.val} --epochs 5 --no-augment "
                f"--out {self.root / 'finetuned'}")


# ---------------------------------------------------------------------------- drawing


def _regular(n: int, radius: float = 1.0, phase: float = 0.0) -> list[Point]:
    return [(radius * math.cos(phase + 2 * math.pi * i / n), radius * math.sin(phase + 2 * math.pi * i / n))
            for i in range(n)]


def _star(points: int = 5, inner: float = 0.45) -> list[Point]:
    out = []
    for i in range(2 * points):
        r = 1.0 if i % 2 == 0 else inner
        a = -math.pi / 2 + math.pi * i / points
        out.append((r * math.cos(a), r * math.sin(a)))
    return out


def _arc(start: float, stop: float, radius: float = 1.0, steps: int = 24, center: Point = (0.0, 0.0)) -> list[Point]:
    return [(center[0] + radius * math.cos(start + (stop - start) * t / steps),
             center[1] + radius * math.sin(start + (stop - start) * t / steps)) for t in range(steps + 1)]


# Each outline is a list of polygons in a unit box around the origin; the second, if any, is cut out.
OUTLINES: dict[str, Callable[[], list[list[Point]]]] = {
    # the fine-tune task
    "circle": lambda: [_regular(40)],
    "cross": lambda: [[(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1), (-0.3, 1),
                       (-0.3, 0.3), (-1, 0.3), (-1, -0.3), (-0.3, -0.3)]],
    "ring": lambda: [_regular(40), _regular(40, 0.55)],
    "square": lambda: [[(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)]],
    "star": lambda: [_star()],
    "triangle": lambda: [_regular(3, 1.0, -math.pi / 2)],
    # the pretraining task (other shapes)
    "arrow": lambda: [[(-1, -0.25), (0.2, -0.25), (0.2, -0.7), (1, 0), (0.2, 0.7), (0.2, 0.25), (-1, 0.25)]],
    "crescent": lambda: [_arc(-math.pi / 2, math.pi / 2) + _arc(math.pi / 2, -math.pi / 2, 0.8, center=(0.35, 0))],
    "diamond": lambda: [[(0, -1), (0.6, 0), (0, 1), (-0.6, 0)]],
    "ell": lambda: [[(-0.7, -1), (-0.2, -1), (-0.2, 0.5), (0.8, 0.5), (0.8, 1), (-0.7, 1)]],
    "hexagon": lambda: [_regular(6)],
    "pentagon": lambda: [_regular(5, 1.0, -math.pi / 2)],
    "semicircle": lambda: [_arc(0, math.pi)],
    "tee": lambda: [[(-1, -1), (1, -1), (1, -0.5), (0.25, -0.5), (0.25, 1), (-0.25, 1), (-0.25, -0.5), (-1, -0.5)]],
    "trapezoid": lambda: [[(-1, 0.7), (1, 0.7), (0.45, -0.7), (-0.45, -0.7)]],
    "wedge": lambda: [[(0, 0)] + _arc(-0.5, 0.9)],
}


def draw(kind: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """One ``size`` x ``size`` RGB image of shape `kind`: random colours, scale, position, rotation, noise."""
    scale = 2  # draw large, then shrink: smooth edges
    canvas = size * scale
    background = rng.integers(0, 256, 3)
    foreground = rng.integers(0, 256, 3)
    while np.abs(foreground.astype(int) - background.astype(int)).sum() < 180:  # keep the shape visible
        foreground = rng.integers(0, 256, 3)
    image = Image.new("RGB", (canvas, canvas), tuple(int(v) for v in background))
    pen = ImageDraw.Draw(image)
    radius = canvas * rng.uniform(0.22, 0.38)
    cx, cy = canvas * rng.uniform(0.38, 0.62, 2)
    angle = math.radians(rng.uniform(-MAX_ROTATION, MAX_ROTATION))
    cos, sin = math.cos(angle), math.sin(angle)
    for i, polygon in enumerate(OUTLINES[kind]()):
        points = [(cx + radius * (x * cos - y * sin), cy + radius * (x * sin + y * cos)) for x, y in polygon]
        pen.polygon(points, fill=tuple(int(v) for v in (foreground if i == 0 else background)))
    small = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.int16)
    noise = rng.normal(0, 12, small.shape)
    return np.clip(small + noise, 0, 255).astype(np.uint8)


def write_shapes(root: Path, classes: Sequence[str] = FINETUNE_CLASSES, *, per_class: int, seed: int,
                 size: int = IMAGE_SIZE) -> Path:
    """PNG files in ``root/<class>/``; the same seed gives the same files."""
    rng = np.random.default_rng(seed)
    for kind in classes:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(draw(kind, rng, size)).save(folder / f"{kind}_{i:03d}.png", optimize=False)
    return root


def shapes_tensors(classes: Sequence[str], *, per_class: int, seed: int,
                   size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same kind of images, in memory: (uint8 [N, 3, size, size], int64 [N])."""
    import torch  # only for training: making the demo's files needs none

    rng = np.random.default_rng(seed)
    images, labels = [], []
    for index, kind in enumerate(classes):
        for _ in range(per_class):
            images.append(draw(kind, rng, size))
            labels.append(index)
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()
    return x, torch.tensor(labels)


# ---------------------------------------------------------------------------- the starting weights


def pretrain(directory: Path, *, per_class: int = PRETRAIN_PER_CLASS, epochs: int = PRETRAIN_EPOCHS,
             seed: int = SEED, verbose: bool = True) -> Path:
    """Train ShuffleNetV2 x0.5 from random weights on the ten pretraining shapes; save it to `directory`.

    This is how the shipped ``zoo/demo_weights`` were made (``scripts/make_demo_weights.py``).
    """
    import torch  # only for training: making the demo's files needs none

    from .finetune import fit  # torch, only when the starting weights are trained
    from .weights import save_pretrained

    torch.manual_seed(seed)
    spec = ImageInput(size=INPUT_SIZE, resize_size=IMAGE_SIZE)
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1)
    std = torch.tensor(spec.std).view(1, 3, 1, 1)

    def normalized(classes: Sequence[str], per: int, data_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = shapes_tensors(classes, per_class=per, seed=data_seed, size=INPUT_SIZE)
        return (x.float() / 255 - mean) / std, y

    train = normalized(PRETRAIN_CLASSES, per_class, seed + 1)
    val = normalized(PRETRAIN_CLASSES, max(per_class // 10, 5), seed + 4)
    model = create(ARCHITECTURE, num_classes=len(PRETRAIN_CLASSES))
    result = fit(model, train, val, epochs=epochs, lr=4e-3, batch_size=64, strategy="no_freeze",
                 scheduler="onecycle", seed=seed, progress=verbose, verbose=verbose)
    card = card_of(model)
    accuracy = result.metrics.get("val_accuracy", float("nan"))
    attach_card(model, dataclasses.replace(
        card, input=spec, weights={}, default_weights=None,
        description=(f"{ARCHITECTURE} trained from random weights by zoo.demo.pretrain on {len(train[1])} synthetic "
                     f"{INPUT_SIZE}x{INPUT_SIZE} images of {len(PRETRAIN_CLASSES)} shapes for {epochs} epochs "
                     f"({accuracy:.1%} accuracy on held-out images of those shapes). Demo starting weights only."),
        extra={**card.extra, "trained_by": "zoo.demo.pretrain", "seed": seed, "pretrain_val_accuracy": accuracy},
    ))
    save_pretrained(model, directory, labels=list(PRETRAIN_CLASSES))
    return directory


SHIPPED_WEIGHTS = Path(__file__).with_name("demo_weights")


def make_demo(root: Path, *, force: bool = False, verbose: bool = True) -> DemoPaths:
    """Write the demo dataset under `root` and put the starting weights beside it.

    The weights are copied from the ones shipped with zoo (made by ``scripts/make_demo_weights.py``);
    if they are missing, they are trained here (a shorter run, a few minutes on two cores).
    """
    root = Path(root)
    paths = DemoPaths(root=root, train=root / "shapes" / "train", val=root / "shapes" / "val",
                      weights=root / "pretrained")
    for split, per_class, seed in ((paths.train, TRAIN_PER_CLASS, SEED + 2), (paths.val, VAL_PER_CLASS, SEED + 3)):
        if force or not split.is_dir():
            if verbose:
                print(f"drawing {per_class * len(FINETUNE_CLASSES)} images into {split}", flush=True)
            staging = split.with_name(f".{split.name}.tmp")
            shutil.rmtree(staging, ignore_errors=True)
            write_shapes(staging, per_class=per_class, seed=seed)
            shutil.rmtree(split, ignore_errors=True)
            staging.rename(split)
    if force or not (paths.weights / "model.safetensors").is_file():
        if (SHIPPED_WEIGHTS / "model.safetensors").is_file():
            if verbose:
                print(f"copying the starting weights (made by scripts/make_demo_weights.py) to {paths.weights}",
                      flush=True)
            shutil.rmtree(paths.weights, ignore_errors=True)
            shutil.copytree(SHIPPED_WEIGHTS, paths.weights)
        else:
            if verbose:
                print(f"training the starting weights ({ARCHITECTURE} on {len(PRETRAIN_CLASSES)} other shapes) "
                      f"into {paths.weights}", flush=True)
            pretrain(paths.weights, per_class=200, epochs=8, verbose=verbose)
    return paths
