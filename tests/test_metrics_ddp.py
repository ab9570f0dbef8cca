"""Task metrics on two CPU processes (gloo, torchrun) equal one process's: the processes add up their
counts and sums before any ratio is taken, with shares of unequal size."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _data_and_models():
    """Data of 37 samples (shares of 19 and 18) for classification, token tagging and regression, and fixed models."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.randn(37, 6, generator=generator)
    classes = (x[:, :3].argmax(-1) + (x[:, 3] > 1).long() * 3).clamp(max=6)
    tokens = torch.randn(37, 5, 4, generator=generator)
    tags = torch.randint(0, len(TAGS), (37, 5), generator=generator)
    tags[:, -1] = -100  # an unlabelled last token
    y = x[:, :2] * torch.tensor([2.0, -1.0]) + 0.3 * torch.randn(37, 2, generator=generator)
    return {"classes": (nn.Linear(6, 7), (x, classes), {"metrics": ["top3_accuracy", "macro_f1"]}),
            "tokens": (nn.Linear(4, len(TAGS)), (tokens, tags), {"metrics": ["entity_f1", "macro_f1"],
                                                                   "labels": TAGS}),
            "regression": (nn.Linear(6, 2), (x, y), {"loss": "mse"})}


def measure_all() -> dict[str, dict]:
    from zoo.finetune import evaluate

    results = {}
    for name, (model, data, options) in _data_and_models().items():
        results[name] = evaluate(model, data, batch_size=5, progress=False, verbose=False, **options)
    return results


def _close(a, b) -> bool:
    """Equal numbers (to float rounding), lists and dicts of them."""
    if isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in b)
    if isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b))
    return a == pytest.approx(b, rel=1e-9)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_of_two_processes_equal_one_processs(tmp_path, monkeypatch):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
              "--master-addr=127.0.0.1", f"--master-port={_free_port()}", __file__, str(tmp_path)]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    one = json.loads(json.dumps(measure_all()))
    two = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert two[0] == two[1]  # every process reports the whole data's metrics
    for task, metrics in one.items():
        assert two[0][task]["samples"] == metrics["samples"] == 37
        for key, value in metrics.items():
            if key == "loss":
                assert two[0][task][key] == pytest.approx(value, rel=1e-5), (task, key)
            else:
                assert _close(two[0][task][key], value), (task, key)
    assert {"top3_accuracy", "macro_f1", "per_class"} <= set(one["classes"])
    assert {"entity_f1", "entity_precision", "entity_recall"} <= set(one["tokens"])
    assert {"mse", "mae", "r2"} <= set(one["regression"])


if __name__ == "__main__":  # started by torchrun: python test_metrics_ddp.py OUT
    import torch.distributed as dist

    dist.init_process_group("gloo")  # held for all three measurements
    rank = dist.get_rank()
    found = measure_all()
    Path(sys.argv[1], f"rank{rank}.json").write_text(json.dumps(found))
    dist.destroy_process_group()
