"""The transformers family against transformers itself, on BERT (a model type both zoo's native encoder and
the family can load).

    python benchmarks/transformers_family.py [--layers 12] [--batch 8] [--length 128] [--repeat 3]
                                             [--creation-only] [--profile DIR]

Random BERT-base weights are written once, as transformers writes them (``save_pretrained``), into a
temporary Hugging Face cache as the repo of the curated card ``transformers/bge-base-en-v1_5``. Then:

* forward: the same weights in ``transformers.AutoModel`` (first-token pooling and L2 norm written out, as
  the card pools) and in the family's module, eval mode, no grad, timed in turns, median of `--repeat`
  rounds; the
  ratio family / transformers (target: at most 1.02x). zoo's native encoder is timed alongside.
* creation: ``AutoModel.from_pretrained(folder)``, ``zoo.create("local-dir:FOLDER")`` (zoo's native encoder)
  and ``zoo.create("transformers/bge-base-en-v1_5", pretrained=True)`` (the family),
  each in its own fresh process, alternating, `--repeat` times; medians of the wall and CPU time
  (``time.process_time``) after imports, of the process's peak resident memory (``VmHWM``; not ``ru_maxrss``,
  which Linux carries over from the parent) and of what creation adds over the memory before it, and their
  ratios to transformers (target: every ratio at most 1.0x). zoo's first creation, which hashes the weights
  file once (zoo remembers a verified file; see docs/weights.md), runs before and is reported on its own.
  ``--creation-only`` skips the forward timing; ``--profile DIR`` writes a cProfile of one creation per path.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "plugins"
HUB_REPO = "BAAI/bge-base-en-v1.5"
CARD = "transformers/bge-base-en-v1_5"

CHILD = r'''
import json, sys, time
mode, folder, profile = sys.argv[1:4]
import torch, transformers, zoo
import zoo.weights.pretrained  # noqa: F401  (import cost outside the timing)
import zoo_transformers.build  # noqa: F401

def memory_mib(field):
    # /proc/self/status, not ru_maxrss: Linux carries ru_maxrss over exec, so a child would report the
    # benchmark's own peak (it built the checkpoint) instead of its own.
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")

def create():
    if mode == "transformers":
        return transformers.AutoModel.from_pretrained(folder)
    if mode == "zoo local-dir":
        return zoo.create("local-dir:" + folder)
    return zoo.create("''' + CARD + r'''", pretrained=True)

before = memory_mib("VmRSS")
if profile:
    import cProfile
    cProfile.run("model = create()", profile)
    sys.exit()
start, cpu = time.perf_counter(), time.process_time()
model = create()
seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
peak = memory_mib("VmHWM")
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu_seconds, "peak_mib": peak, "added_mib": peak - before}))
'''
MODES = ("transformers", "zoo local-dir", "zoo card")


def plugin_site(root: Path) -> Path:
    """A dist-info that declares the family's entry point, for a checkout where it is not installed."""
    info = root / "zoo_transformers_bench-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-transformers-bench\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[zoo.plugins]\ntransformers = zoo_transformers.plugin:register\n")
    return root


def write_checkpoint(cache: Path, layers: int) -> Path:
    import hashlib

    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.BertConfig(num_hidden_layers=layers, architectures=["BertModel"])
    model = transformers.AutoModel.from_config(config)
    folder = cache / "source"
    model.save_pretrained(folder)
    commit = "0" * 40
    repo = cache / f"models--{HUB_REPO.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        data = path.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.write_bytes(data)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / path.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def timed(fns: dict[str, Any], repeat: int, loops: int = 3) -> dict[str, float]:
    """Median seconds per call of each function, timed in turns (one round of each, `repeat` rounds), so a
    change in the machine's load during the run falls on all of them alike."""
    import torch

    times: dict[str, list[float]] = {name: [] for name in fns}
    with torch.no_grad():
        for fn in fns.values():
            fn()
        for _ in range(repeat):
            for name, fn in fns.items():
                start = time.perf_counter()
                for _ in range(loops):
                    fn()
                times[name].append((time.perf_counter() - start) / loops)
    return {name: statistics.median(values) for name, values in times.items()}


def forward_ratio(folder: Path, args: argparse.Namespace) -> None:
    import torch
    import torch.nn.functional as F
    import transformers

    import zoo

    theirs = transformers.AutoModel.from_pretrained(folder).eval()
    ours = zoo.create(CARD, pretrained=True).eval()
    native = zoo.create(f"local-dir:{folder}").eval()
    ids = torch.randint(1000, 20000, (args.batch, args.length))
    mask = torch.ones_like(ids)
    mask[: args.batch // 2, args.length // 2:] = 0

    def reference() -> torch.Tensor:
        hidden = theirs(input_ids=ids, attention_mask=mask).last_hidden_state
        return F.normalize(hidden[:, 0], dim=-1)

    with torch.no_grad():
        assert torch.allclose(ours(ids, mask), reference(), atol=1e-5)
    medians = timed({"transformers": reference, "family": lambda: ours(ids, mask),
                     "native": lambda: native(ids, mask)}, args.repeat)
    t_theirs, t_ours, t_native = medians["transformers"], medians["family"], medians["native"]
    print(f"forward [{args.batch}x{args.length}]: transformers {t_theirs * 1e3:.1f} ms, family {t_ours * 1e3:.1f} ms "
          f"({t_ours / t_theirs:.3f}x, target <= 1.02x), native encoder {t_native * 1e3:.1f} ms "
          f"({t_native / t_theirs:.3f}x)")


def run_child(mode: str, folder: Path, env: dict[str, str], profile: str = "") -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder), profile], env=env, capture_output=True,
                         text=True)
    if out.returncode:
        raise SystemExit(f"{mode} failed:\n{out.stderr}")
    return {} if profile else dict(json.loads(out.stdout.strip().splitlines()[-1]))


def creation(folder: Path, env: dict[str, str], repeat: int) -> None:
    first = run_child("zoo card", folder, env)  # the one creation that hashes the file (then remembered)
    print(f"create: zoo card, first time (sha256 of the weights file, then remembered): {first['seconds']:.2f} s")
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for _ in range(repeat):
        for mode in MODES:
            results[mode].append(run_child(mode, folder, env))
    keys = ("seconds", "cpu_seconds", "peak_mib", "added_mib")
    med = {m: {k: statistics.median(r[k] for r in rs) for k in keys} for m, rs in results.items()}
    print(f"create, median of {repeat} fresh processes each, alternating (targets: every ratio <= 1.0x):")
    print(f"  {'':<14}{'wall s':>8}{'cpu s':>8}{'peak MiB':>10}{'added MiB':>11}"
          f"{'wall':>8}{'cpu':>8}{'peak':>8}{'added':>8}")
    t = med["transformers"]
    for mode in MODES:
        z = med[mode]
        ratios = "".join(f"{z[k] / max(t[k], 1e-9):>7.2f}x" for k in keys)
        print(f"  {mode:<14}{z['seconds']:>8.2f}{z['cpu_seconds']:>8.2f}{z['peak_mib']:>10.0f}{z['added_mib']:>11.0f}"
              f"{ratios}")


def profiles(folder: Path, env: dict[str, str], out: Path) -> None:
    """One creation per mode under cProfile, each in a fresh process; the top of each by cumulative time."""
    import pstats

    out.mkdir(parents=True, exist_ok=True)
    for mode in MODES:
        path = out / f"create-{mode.replace(' ', '-')}.prof"
        run_child(mode, folder, env, profile=str(path))
        print(f"== {mode}: {path}")
        stats = pstats.Stats(str(path)).sort_stats("cumulative")
        stats.print_stats(r"zoo|transformers/(modeling_utils|models/auto)", 25)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--creation-only", action="store_true", help="skip the forward timing")
    parser.add_argument("--forward-only", action="store_true", help="skip the creation timing")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="also write a cProfile of one creation per path into DIR and print its top")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-transformers-") as tmp:
        root = Path(tmp)
        cache = root / "hub"
        site = plugin_site(root / "site")
        env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "ZOO_CACHE": str(root / "zoo"),
               "TRANSFORMERS_VERBOSITY": "error",
               "PYTHONPATH": os.pathsep.join([str(site), str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
        os.environ.update({k: env[k] for k in ("HF_HUB_CACHE", "HF_HUB_OFFLINE", "ZOO_CACHE")})
        sys.path[:0] = [str(site), str(PLUGINS)]
        folder = write_checkpoint(cache, args.layers)
        if not args.creation_only:
            forward_ratio(folder, args)
        if not args.forward_only:
            creation(folder, env, args.repeat)
        if args.profile:
            profiles(folder, env, args.profile)


if __name__ == "__main__":
    main()
