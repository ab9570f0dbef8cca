"""Creating a large pretrained model from a local safetensors file: zoo against the plain path.

    python benchmarks/load.py [--model vit_l_16] [--repeat 3] [--keep DIR]

The script saves the model's (random) weights to a safetensors file in a temporary
directory, then runs each way of loading it in its own fresh process, alternating, `--repeat`
times:

* plain: ``torchvision.models.<model>()``, ``safetensors.torch.load_file``, ``load_state_dict``
* zoo:   ``zoo.create(name, pretrained=True)`` with a card whose weights are that file
         (built on the meta device, tensors assigned from the memory-mapped file)

Each process reports the creation time measured inside it after its imports, its peak
resident memory (``ru_maxrss``), and the time of one forward pass after creation (the
lean path reads weights from the page cache lazily, so the first forward pass pays for
what creation skipped). The sha256 is checked once beforehand, as `zoo download` does;
that time is printed on its own line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r'''
import json, resource, sys, time
mode, model_name, path, digest = sys.argv[1:5]
import torch, torchvision
torch.set_num_threads(max(1, torch.get_num_threads()))
if mode == "plain":
    from safetensors.torch import load_file
else:
    import dataclasses, zoo, zoo.registry
    import zoo.weights.pretrained  # noqa: F401  (import cost outside the timing)
    try:
        card = zoo.get_card(model_name)
    except zoo.ZooError:
        card = zoo.ModelCard(name=model_name, builder=f"torchvision.models:{model_name}",
                             task="image-classification", modality="image", head="heads.head")
    weights = zoo.WeightsCard(source=path, sha256=digest, num_classes=1000)
    bench_name = f"bench_{model_name}"  # its own name beside the catalogue's card, weights from the local file
    zoo.default_registry().register(dataclasses.replace(card, name=bench_name, weights={"local": weights},
                                                        default_weights="local", aliases=(), recipe=None))

def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

after_imports = rss_mib()
start = time.perf_counter()
if mode == "plain":
    model = getattr(torchvision.models, model_name)()
    model.load_state_dict(load_file(path))
elif mode == "verify":
    from zoo.weights import fetch
    fetch(zoo.get_card(bench_name), "local")
    model = None
else:
    model = zoo.create(bench_name, pretrained=True)
seconds = time.perf_counter() - start
peak = rss_mib()
forward = None
check = None
if model is not None:
    model.eval()
    with torch.inference_mode():
        start = time.perf_counter()
        model(torch.zeros(1, 3, 224, 224))
        forward = time.perf_counter() - start
        check = float(sum(p.double().sum() for p in model.parameters()))
print(json.dumps({"seconds": seconds, "peak_mib": peak, "after_imports_mib": after_imports,
                  "forward_s": forward, "checksum": check}))
'''

SAVE = r'''
import hashlib, sys, torch, torchvision
from zoo.weights import write_safetensors
model_name, path = sys.argv[1:3]
torch.manual_seed(0)
model = getattr(torchvision.models, model_name)()
write_safetensors(model.state_dict(), path)
digest = hashlib.sha256()
with open(path, "rb") as f:
    while chunk := f.read(1 << 24):
        digest.update(chunk)
print(digest.hexdigest())
'''


def run_child(mode: str, model: str, path: str, digest: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, model, path, digest], env=env, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_l_16", help="a torchvision classification model name")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="directory for the weights file (kept); default: a temporary one")
    args = parser.parse_args()

    workdir = args.keep or tempfile.mkdtemp(prefix="zoo-bench-load-")
    path = os.path.join(workdir, f"{args.model}.safetensors")
    env = {**os.environ, "ZOO_CACHE": os.path.join(workdir, "zoo-cache"), "HF_HUB_OFFLINE": "1"}
    print(f"saving random {args.model} weights to {path} ...", flush=True)
    digest = subprocess.run([sys.executable, "-c", SAVE, args.model, path], env=env, check=True,
                            capture_output=True, text=True).stdout.strip()
    size_mib = os.path.getsize(path) / 2**20
    print(f"file: {size_mib:.0f} MiB, sha256 {digest[:16]}...")
    verify = run_child("verify", args.model, path, digest, env)
    print(f"sha256 check once (as `zoo download` does): {verify['seconds']:.2f} s; later loads reuse its stamp\n")

    runs: dict[str, list[dict]] = {"plain": [], "zoo": []}
    for _ in range(args.repeat):
        for mode in runs:  # alternate, so both see the same machine load
            runs[mode].append(run_child(mode, args.model, path, digest, env))
    if runs["plain"][0]["checksum"] != runs["zoo"][0]["checksum"]:
        raise SystemExit("the two paths loaded different weights")

    def median(mode: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[mode])

    rows = [("creation time (s, in process, after imports)", "seconds", "{:.3f}"),
            ("peak RSS of the process (MiB)", "peak_mib", "{:.0f}"),
            ("RSS after imports (MiB)", "after_imports_mib", "{:.0f}"),
            ("first forward pass, 1x3x224x224 (s)", "forward_s", "{:.3f}")]
    print(f"{args.model}, median of {args.repeat} runs per path, each in a fresh process")
    print(f"{'':46} {'plain':>10} {'zoo':>10} {'zoo/plain':>10}")
    for label, key, fmt in rows:
        plain, ours = median("plain", key), median("zoo", key)
        print(f"{label:46} {fmt.format(plain):>10} {fmt.format(ours):>10} {ours / plain:10.3f}")
    t = median("zoo", "seconds") / median("plain", "seconds")
    m = median("zoo", "peak_mib") / median("plain", "peak_mib")
    print(f"\ncreation time ratio {t:.3f} (target <= 0.1); peak memory ratio {m:.3f} (target <= 0.4)")
    if not args.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
