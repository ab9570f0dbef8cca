"""Wall time of listing models, as whole processes: `zoo list` against timm and torchvision.

    python benchmarks/list_models.py [--repeat 5]

Each command runs in a fresh interpreter (so imports count, as they do for a user);
the median of `--repeat` runs is printed with its ratio to `zoo list`.
timm is needed only here: pip install -c constraints.txt -e ".[bench]".
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

COMMANDS = {
    "zoo list": [sys.executable, "-m", "zoo", "list"],
    "timm.list_models()": [sys.executable, "-c", "import timm; timm.list_models()"],
    "torchvision list_models()": [sys.executable, "-c", "import torchvision.models as m; m.list_models()"],
}


def wall_time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if shutil.which(sys.executable) is None:
        raise SystemExit("python not found")
    results = {}
    for label, cmd in COMMANDS.items():
        wall_time(cmd)  # warm the file-system cache once
        results[label] = statistics.median(wall_time(cmd) for _ in range(args.repeat))
    zoo_time = results["zoo list"]
    print(f"{'command':28} {'median wall s':>14} {'zoo list / this':>16}")
    for label, seconds in results.items():
        print(f"{label:28} {seconds:14.3f} {zoo_time / seconds:16.3f}")
    ratio = zoo_time / results["timm.list_models()"]
    print(f"\nzoo list takes {ratio:.3f}x the wall time of timm.list_models() (target <= 0.15)")


if __name__ == "__main__":
    main()
