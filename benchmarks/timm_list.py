"""Listing with the timm family installed, as whole processes: `zoo list` against timm's own listing.

    python benchmarks/timm_list.py [--repeat 5]

`zoo list` prints every model of every family, the timm cards among them, in a fresh interpreter; timm's
side is ``import timm; timm.list_models(pretrained=True)``. The runs alternate (zoo, timm, zoo, ...), so
a change in the machine's load falls on both sides alike. The median wall time of `--repeat` runs of each
is printed, with their ratio (the target is at most 0.05), and so is the median CPU time (user + system)
of the process, which a busy shared machine disturbs much less than the wall time.

Both sides run with a bytecode cache, as an installed package has one (pip compiles it at install time):
the cache lives in a temporary ``PYTHONPYCACHEPREFIX`` filled by the warm-up run, so nothing is written
into the source tree even where ``PYTHONDONTWRITEBYTECODE`` is set.
"""
from __future__ import annotations

import argparse
import os
import resource
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


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of `cmd` as a whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    listed = subprocess.run([sys.executable, "-c", "import zoo; print(len(zoo.list_models('timm/*')))"],
                            check=True, capture_output=True, text=True).stdout.strip()
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in COMMANDS}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-pycache-") as pycache:
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for cmd in COMMANDS.values():
            timed(cmd, env)  # warm the file-system cache and write the bytecode cache once
        for _ in range(args.repeat):
            for label, cmd in COMMANDS.items():
                runs[label].append(timed(cmd, env))
    wall = {label: statistics.median(w for w, _ in found) for label, found in runs.items()}
    cpu = {label: statistics.median(c for _, c in found) for label, found in runs.items()}
    print(f"timm cards listed by zoo: {listed}")
    print(f"{'command':36} {'median wall s':>14} {'median CPU s':>13}")
    for label in COMMANDS:
        print(f"{label:36} {wall[label]:14.3f} {cpu[label]:13.3f}")
    timm_label = "timm.list_models(pretrained=True)"
    print(f"\nzoo list takes {wall['zoo list'] / wall[timm_label]:.3f}x the wall time of timm's listing "
          f"(target <= {TARGET}) and {cpu['zoo list'] / cpu[timm_label]:.3f}x its CPU time")


if __name__ == "__main__":
    main()
