"""Make the demo's starting weights, shipped in zoo/demo_weights/ (about 1.5 MB).

ShuffleNetV2 x0.5 (torchvision's architecture, via zoo.create) is trained from random
weights on synthetic 48x48 images of ten shapes (pentagon, hexagon, diamond, arrow, ...)
that the demo's fine-tune task does not use, and saved with zoo.save_pretrained. The run is
seeded; rerun it with

    python scripts/make_demo_weights.py [--out zoo/demo_weights] [--epochs 20] [--per-class 600]

It takes several minutes on two CPU cores. `zoo demo` copies the result next to the demo data.
"""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from zoo import demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=demo.SHIPPED_WEIGHTS)
    parser.add_argument("--epochs", type=int, default=demo.PRETRAIN_EPOCHS)
    parser.add_argument("--per-class", type=int, default=demo.PRETRAIN_PER_CLASS)
    args = parser.parse_args()
    staging = args.out.with_name(f".{args.out.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    started = time.perf_counter()
    demo.pretrain(staging, per_class=args.per_class, epochs=args.epochs)
    shutil.rmtree(args.out, ignore_errors=True)
    staging.rename(args.out)
    print(f"wrote {args.out} in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
