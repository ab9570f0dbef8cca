"""Gradient accumulation and EMA under DDP: two CPU processes (torchrun, gloo) train as one process would."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

TRAIN = textwrap.dedent("""
    import os, sys
    import torch
    from torch import nn
    from zoo.finetune import fit

    out, batch_size = sys.argv[1], int(sys.argv[2])
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] - x[:, 1] > 0).long()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    result = fit(model, (x, y), (x, y), epochs=2, batch_size=batch_size, lr=0.05, seed=3, optimizer="sgd",
                 accumulate_grad_batches=2, ema_decay=0.9, warmup_steps=2, progress=False, verbose=False)
    rank = int(os.environ.get("RANK", 0))
    torch.save({"model": model.state_dict(), "ema": result.ema}, os.path.join(out, f"rank{rank}.pt"))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_accumulating_match_one_process_with_the_same_global_batch(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
              "--master-addr=127.0.0.1", f"--master-port={_free_port()}", str(script), str(two), "4"]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    alone = subprocess.run([sys.executable, str(script), str(one), "8"], env=env, capture_output=True, text=True,
                           timeout=180)
    assert alone.returncode == 0, alone.stderr[-3000:]
    rank0, rank1, single = (torch.load(path, weights_only=True)
                            for path in (two / "rank0.pt", two / "rank1.pt", one / "rank0.pt"))
    for part in ("model", "ema"):
        for name in rank0[part]:
            assert torch.equal(rank0[part][name], rank1[part][name]), name  # synchronised on the stepping batch
            assert torch.allclose(rank0[part][name], single[part][name], atol=1e-5), name  # 2 x 4 == 1 x 8
