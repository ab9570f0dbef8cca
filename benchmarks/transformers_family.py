"""The transformers family against transformers itself, on BERT (a model type both zoo's native encoder and
the family can load).

    python benchmarks/transformers_family.py [--layers 12] [--batch 8] [--length 128] [--repeat 3]

Random BERT-base weights are written once, as transformers writes them (``save_pretrained``), into a
temporary Hugging Face cache as the repo of the curated card ``transformers/bge-base-en-v1_5``. Then:

* forward: the same weights in ``transformers.AutoModel`` (first-token pooling and L2 norm written out, as
  the card pools) and in the family's module, eval mode, no grad, median of `--repeat` timed loops; the
  ratio family / transformers (target: at most 1.02x). zoo's native encoder is timed alongside.
* creation: ``AutoModel.from_pretrained(folder)``, ``zoo.create("local-dir:FOLDER")`` (zoo's native encoder)
  and ``zoo.create("transformers/bge-base-en-v1_5", pretrained=True)`` (the family),
  each in its own fresh process, alternating, `--repeat` times; medians of the time after imports, of the
  whole-process peak resident memory (``ru_maxrss``) and of what creation adds to the peak, and their ratios
  (target: no slower, no more memory). ``--creation-only`` skips the forward timing.
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

REPO = Path(__file__).resolve().parent.parent
PLUGINS = REPO / "plugins"
HUB_REPO = "BAAI/bge-base-en-v1.5"
CARD = "transformers/bge-base-en-v1_5"

CHILD = r'''
import json, resource, sys, time
mode, folder = sys.argv[1:3]
import torch, transformers, zoo
import zoo.weights.pretrained  # noqa: F401  (import cost outside the timing)
import zoo_transformers.build  # noqa: F401

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

before = rss_mib()
start = time.perf_counter()
if mode == "transformers":
    model = transformers.AutoModel.from_pretrained(folder)
elif mode == "zoo local-dir":
    model = zoo.create("local-dir:" + folder)
else:
    model = zoo.create("''' + CARD + r'''", pretrained=True)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_mib": rss_mib(), "added_mib": rss_mib() - before}))
'''


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


def timed(fn, repeat: int, loops: int = 5) -> float:
    import torch

    with torch.no_grad():
        fn()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            for _ in range(loops):
                fn()
            times.append((time.perf_counter() - start) / loops)
    return statistics.median(times)


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
    t_theirs = timed(reference, args.repeat)
    t_ours = timed(lambda: ours(ids, mask), args.repeat)
    t_native = timed(lambda: native(ids, mask), args.repeat)
    print(f"forward [{args.batch}x{args.length}]: transformers {t_theirs * 1e3:.1f} ms, family {t_ours * 1e3:.1f} ms "
          f"({t_ours / t_theirs:.3f}x, target <= 1.02x), native encoder {t_native * 1e3:.1f} ms "
          f"({t_native / t_theirs:.3f}x)")


def creation(folder: Path, env: dict[str, str], repeat: int) -> None:
    results: dict[str, list[dict[str, float]]] = {"transformers": [], "zoo local-dir": [], "zoo card": []}
    for _ in range(repeat):
        for mode in results:
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder)], env=env, capture_output=True,
                                 text=True, check=True)
            results[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    keys = ("seconds", "peak_mib", "added_mib")
    med = {m: {k: statistics.median(r[k] for r in rs) for k in keys} for m, rs in results.items()}
    t = med["transformers"]
    print(f"create: transformers AutoModel {t['seconds']:.2f} s / {t['peak_mib']:.0f} MiB peak "
          f"(+{t['added_mib']:.0f} MiB over the imports)")
    for mode in ("zoo local-dir", "zoo card"):
        z = med[mode]
        print(f"create: {mode} {z['seconds']:.2f} s / {z['peak_mib']:.0f} MiB peak (+{z['added_mib']:.0f} MiB); "
              f"ratios time {z['seconds'] / t['seconds']:.2f}x, peak memory {z['peak_mib'] / t['peak_mib']:.2f}x, "
              f"added memory {z['added_mib'] / max(t['added_mib'], 1):.2f}x (targets <= 1.0x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--creation-only", action="store_true", help="skip the forward timing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-transformers-") as tmp:
        root = Path(tmp)
        cache = root / "hub"
        site = plugin_site(root / "site")
        env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1",
               "PYTHONPATH": os.pathsep.join([str(site), str(PLUGINS), os.environ.get("PYTHONPATH", "")])}
        os.environ.update({k: env[k] for k in ("HF_HUB_CACHE", "HF_HUB_OFFLINE")})
        sys.path[:0] = [str(site), str(PLUGINS)]
        folder = write_checkpoint(cache, args.layers)
        if not args.creation_only:
            forward_ratio(folder, args)
        creation(folder, env, args.repeat)


if __name__ == "__main__":
    main()
