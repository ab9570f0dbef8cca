"""Creating a large timm model (a ViT-L) from a local file: `zoo.create` against `timm.create_model`.

    python benchmarks/timm_create.py [--arch vit_large_patch16_224] [--tag augreg_in21k_ft_in1k] [--repeat 3]

Random weights of the model are written once, as the Hub repo ``timm/<arch>.<tag>`` in a temporary Hugging
Face cache, and both libraries load that same file offline, each in its own fresh process, alternating,
`--repeat` times: ``timm.create_model("<arch>.<tag>", pretrained=True)`` and
``zoo.create("timm/<arch>.<tag>", pretrained=True)``. Each process reports its creation time (after
imports) and its whole-process peak resident memory (``ru_maxrss``); the medians and their ratios are
printed (targets: time at most 0.1x, memory at most 0.5x). The file's sha256 is checked once beforehand,
as `zoo download` does, and printed on its own line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

CHILD = r'''
import json, resource, sys, time
mode, name = sys.argv[1:3]
import torch, timm, zoo
import zoo.weights.pretrained  # noqa: F401  (import cost outside the timing)

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

after_imports = rss_mib()
start = time.perf_counter()
if mode == "timm":
    model = timm.create_model(name, pretrained=True)
elif mode == "verify":
    from zoo.weights import fetch
    card = zoo.get_card("timm/" + name)
    fetch(card, card.default_weights)
    model = None
else:
    model = zoo.create("timm/" + name, pretrained=True)
seconds = time.perf_counter() - start
peak = rss_mib()
check = None
if model is not None:
    with torch.no_grad():
        check = float(sum(p.double().sum() for p in model.parameters()))
print(json.dumps({"seconds": seconds, "peak_mib": peak, "after_imports_mib": after_imports, "checksum": check}))
'''

SAVE = r'''
import hashlib, os, sys, torch, timm
from safetensors.torch import save_file
arch, repo_dir = sys.argv[1:3]
torch.manual_seed(0)
model = timm.create_model(arch, pretrained=False)
tmp = os.path.join(repo_dir, "model.tmp")
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, tmp)
digest = hashlib.sha256()
with open(tmp, "rb") as f:
    while chunk := f.read(1 << 24):
        digest.update(chunk)
print(digest.hexdigest())
'''


def write_hub_repo(cache: str, arch: str, tag: str, env: dict) -> str:
    """Random weights as huggingface_hub's cache holds the repo timm/<arch>.<tag> (blob named by its sha256)."""
    repo = os.path.join(cache, f"models--timm--{arch}.{tag}")
    commit = "0" * 40
    for sub in ("blobs", os.path.join("snapshots", commit), "refs"):
        os.makedirs(os.path.join(repo, sub), exist_ok=True)
    digest = subprocess.run([sys.executable, "-c", SAVE, arch, repo], env=env, check=True, capture_output=True,
                            text=True).stdout.strip()
    blob = os.path.join(repo, "blobs", digest)
    os.replace(os.path.join(repo, "model.tmp"), blob)
    os.symlink(os.path.relpath(blob, os.path.join(repo, "snapshots", commit)),
               os.path.join(repo, "snapshots", commit, "model.safetensors"))
    with open(os.path.join(repo, "refs", "main"), "w") as fh:
        fh.write(commit)
    return blob


def run_child(mode: str, name: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, name], env=env, check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--arch", default="vit_large_patch16_224")
    parser.add_argument("--tag", default="augreg_in21k_ft_in1k")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    name = f"{args.arch}.{args.tag}"
    workdir = tempfile.mkdtemp(prefix="zoo-bench-timm-")
    cache = os.path.join(workdir, "hub")
    env = {**os.environ, "HF_HUB_CACHE": cache, "HF_HUB_OFFLINE": "1", "ZOO_CACHE": os.path.join(workdir, "zoo")}
    try:
        print(f"writing random {name} weights to a local Hub cache in {workdir} ...", flush=True)
        blob = write_hub_repo(cache, args.arch, args.tag, env)
        print(f"file: {os.path.getsize(blob) / 2**20:.0f} MiB")
        verify = run_child("verify", name, env)
        print(f"sha256 check once (as `zoo download` does): {verify['seconds']:.2f} s\n")
        runs: dict[str, list[dict]] = {"timm": [], "zoo": []}
        for _ in range(args.repeat):
            for mode in runs:  # alternate, so both see the same machine load
                runs[mode].append(run_child(mode, name, env))
        if runs["timm"][0]["checksum"] != runs["zoo"][0]["checksum"]:
            raise SystemExit("the two libraries loaded different weights")

        def median(mode: str, key: str) -> float:
            return statistics.median(r[key] for r in runs[mode])

        rows = [("creation time (s, in process, after imports)", "seconds", "{:.3f}"),
                ("peak RSS of the process (MiB)", "peak_mib", "{:.0f}"),
                ("RSS after imports (MiB)", "after_imports_mib", "{:.0f}")]
        print(f"{name}, median of {args.repeat} runs per library, each in a fresh process")
        print(f"{'':46} {'timm':>10} {'zoo':>10} {'zoo/timm':>10}")
        for label, key, fmt in rows:
            theirs, ours = median("timm", key), median("zoo", key)
            print(f"{label:46} {fmt.format(theirs):>10} {fmt.format(ours):>10} {ours / theirs:10.3f}")
        t = median("zoo", "seconds") / median("timm", "seconds")
        m = median("zoo", "peak_mib") / median("timm", "peak_mib")
        print(f"\ncreation time ratio {t:.3f} (target <= 0.1); peak memory ratio {m:.3f} (target <= 0.5)")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
