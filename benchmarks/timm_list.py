"""Listing with the timm family installed, as whole processes: `zoo list` against timm's own listing.

    python benchmarks/timm_list.py [--repeat 5]

`zoo list` prints every model of every family, the timm cards among them, in a fresh interpreter; timm's
side is ``import timm; timm.list_models(pretrained=True)``. The median of `--repeat` runs of each is
printed, with their ratio (the target is at most 0.05).

Both sides run with a bytecode cache, as an installed package has one (pip compiles it at install time):
the cache lives in a temporary ``PYTHONPYCACHEPREFIX`` filled by the warm-up run, so nothing is written
into the source tree even where ``PYTHONDONTWRITEBYTECODE`` is set.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

COMMANDS = {
    "zoo list": [sys.executable, "-m", "zoo", "list"],
    "timm.list_models(pretrained=True)": [sys.executable, "-c",
                                          "import timm; timm.list_models(pretrained=True)"],
}
TARGET = 0.05


def wall_time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    listed = subprocess.run([sys.executable, "-c", "import zoo; print(len(zoo.list_models('timm/*')))"],
                            check=True, capture_output=True, text=True).stdout.strip()
    results = {}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-pycache-") as pycache:
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for label, cmd in COMMANDS.items():
            wall_time(cmd, env)  # warm the file-system cache and write the bytecode cache once
            results[label] = statistics.median(wall_time(cmd, env) for _ in range(args.repeat))
    print(f"timm cards listed by zoo: {listed}")
    print(f"{'command':36} {'median wall s':>14}")
    for label, seconds in results.items():
        print(f"{label:36} {seconds:14.3f}")
    ratio = results["zoo list"] / results["timm.list_models(pretrained=True)"]
    print(f"\nzoo list takes {ratio:.3f}x the wall time of timm's listing (target <= {TARGET})")


if __name__ == "__main__":
    main()
