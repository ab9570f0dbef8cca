"""Distributed data parallel: two CPU processes under torchrun (gloo) train as one process would."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import trainer_models as tm

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_processes_match_one_process_with_the_same_global_batch(tmp_path, monkeypatch):
    two, one = tmp_path / "two", tmp_path / "one"
    two.mkdir()
    one.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]), "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
              "--master-addr=127.0.0.1", f"--master-port={_free_port()}", tm.__file__, "ddp", str(two), "4"]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    tm.ddp_train(str(one), 8)  # one process, the same global batch

    rank0, rank1, single = (torch.load(path, weights_only=True)
                            for path in (two / "rank0.pt", two / "rank1.pt", one / "rank0.pt"))
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name                 # gradients were synchronised
        assert torch.allclose(rank0[name], single[name], atol=1e-5), name  # 2 x 4 samples == 1 x 8 samples
    info = json.loads((two / "rank0.json").read_text())
    assert info == {"world": 2, "val_samples": 64, "train_samples": 64}    # metrics summed over both processes
    assert (two / "run" / "last.pt").is_file() and (two / "run" / "best" / "model.safetensors").is_file()
