"""Several machines: two ``torchrun`` launches (``--nnodes 2``, a c10d rendezvous on 127.0.0.1) train as one process.

Each launch plays one machine: it runs in its own folder, so a relative ``checkpoint_dir`` is a
disk the other machine cannot see. Only global rank 0 writes the run's files, a resumed run reads
its checkpoint from rank 0's disk, and each machine fills its own feature cache once.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from zoo.finetune import distributed

REPO = Path(__file__).resolve().parent.parent

TRAIN = textwrap.dedent("""
    import json, os, sys
    import torch
    from torch import nn
    from zoo.finetune import fit

    out, batch_size, epochs, resume = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "resume"
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] - x[:, 1] > 0).long()
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 2))
    result = fit(model, (x, y), (x, y), epochs=epochs, batch_size=batch_size, lr=0.05, seed=3, optimizer="sgd",
                 scheduler="constant", checkpoint_dir="run", resume=resume, progress=False, verbose=False)
    rank = int(os.environ.get("RANK", 0))
    torch.save(model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"world": int(os.environ.get("WORLD_SIZE", 1)), "epochs": len(result.history),
                   "val_samples": result.history[-1]["val_samples"]}, f)
""")

PROBE = textwrap.dedent("""
    import json, os, sys
    import torch
    from finetune_models import conv_net
    from zoo.finetune import fit, trainer

    out = sys.argv[1]
    hits = []

    def recording(*args, **kwargs):
        cached = original(*args, **kwargs)
        hits.append(cached.hit)
        return cached

    original, trainer.cached_features = trainer.cached_features, recording
    x = torch.randn(24, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    y = torch.arange(24) % 5
    model = conv_net()
    fit(model, (x, y), epochs=1, batch_size=4, strategy="freeze", progress=False, verbose=False)
    name = f"rank{os.environ['RANK']}-local{os.environ['LOCAL_RANK']}.json"
    with open(os.path.join(out, name), "w") as f:
        json.dump(hits, f)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")]), "OMP_NUM_THREADS": "1",
           **extra}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _two_machines(script: Path, args: list[str], nodes: list[Path], *, per_node: int = 1,
                  env: list[dict[str, str]] | None = None) -> None:
    """Launch `script` on two 'machines' at once: one torchrun each, in its own folder, joined by c10d.

    A launch that fails ends the test at once with both outputs: the other machine's agent would otherwise
    wait out torchrun's exit barrier (minutes) for a peer that is gone.
    """
    port = _free_port()
    launches, logs = [], []
    for rank, folder in enumerate(nodes):
        command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", str(per_node),
                   "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "zoo-test",
                   # both 'machines' are this host: say which one keeps the rendezvous store (the first)
                   "--rdzv-conf", f"is_host={int(rank == 0)}", "--node-rank", str(rank), str(script), *args]
        logs.append(tempfile.TemporaryFile("w+"))
        # each launch in its own session: a stuck one is killed with its workers, not just its agent
        launches.append(subprocess.Popen(command, cwd=folder, env=(env or [_env(), _env()])[rank], stdout=logs[-1],
                                         stderr=subprocess.STDOUT, text=True, start_new_session=True))
    deadline = time.monotonic() + 240
    try:
        while any(launch.poll() is None for launch in launches):
            failed = any(launch.returncode not in (None, 0) for launch in launches)
            if failed or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        _kill(launches)
    printed = []
    for log in logs:
        log.seek(0)
        printed.append(log.read())
        log.close()
    codes = [launch.wait() for launch in launches]
    if codes != [0, 0]:
        pytest.fail(f"the two launches ended with {codes} (-9: still running after 240 s or after the other failed):\n"
                    + "\n".join(f"--- machine {rank}:\n{output[-3000:]}" for rank, output in enumerate(printed)))


def _kill(launches: list[subprocess.Popen[str]]) -> None:
    for launch in launches:
        if launch.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(launch.pid, signal.SIGKILL)


def _single(script: Path, args: list[str], folder: Path) -> None:
    done = subprocess.run([sys.executable, str(script), *args], cwd=folder, env=_env(), capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]


def _weights(folder: Path, rank: int) -> dict[str, torch.Tensor]:
    return torch.load(folder / f"rank{rank}.pt", weights_only=True)


def test_two_machines_match_one_process_and_resume_from_the_first_machines_disk(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    node0, node1, one = (tmp_path / name for name in ("node0", "node1", "one"))
    for folder in (node0, node1, one):
        folder.mkdir()

    for epochs, resume in ((1, "fresh"), (2, "resume")):
        _two_machines(script, [str(tmp_path / "node0"), "4", str(epochs), resume], [node0, node1])
        _single(script, [str(one), "8", str(epochs), resume], one)  # one process, the same global batch
        rank0, rank1, single = _weights(node0, 0), _weights(node0, 1), _weights(one, 0)
        for name in rank0:
            assert torch.equal(rank0[name], rank1[name]), name                 # synchronised across machines
            assert torch.allclose(rank0[name], single[name], atol=1e-5), name  # 2 x 4 samples == 1 x 8 samples
        info = json.loads((node0 / "rank0.json").read_text())
        assert info == {"world": 2, "epochs": epochs, "val_samples": 64}
        # only global rank 0 wrote the run folder; the second machine's disk has none (it resumed from rank 0's)
        assert (node0 / "run" / "last.pt").is_file() and (node0 / "run" / "best" / "model.safetensors").is_file()
        assert not (node1 / "run").exists()


@pytest.mark.slow  # several torchrun launches: minutes on two cores
def test_each_machine_fills_its_feature_cache_once(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    out, node0, node1 = tmp_path / "out", tmp_path / "node0", tmp_path / "node1"
    for folder in (out, node0, node1):
        folder.mkdir()
    caches = [node0 / "cache", node1 / "cache"]  # a cache on each machine's own disk
    _two_machines(script, [str(out)], [node0, node1], per_node=2,
                  env=[_env(ZOO_CACHE=str(caches[0])), _env(ZOO_CACHE=str(caches[1]))])
    hits = {path.stem: json.loads(path.read_text()) for path in out.glob("*.json")}
    # the first process of each machine computes the features, the other one reads them
    assert hits == {"rank0-local0": [False], "rank1-local1": [True], "rank2-local0": [False], "rank3-local1": [True]}
    for cache in caches:
        assert len(list((cache / "features").glob("*.safetensors"))) == 1


@pytest.mark.parametrize(("variables", "expected"), [
    ({"LOCAL_RANK": "1"}, 1),
    ({"SLURM_LOCALID": "2"}, 2),              # srun without torchrun
    ({"LOCAL_RANK": "0", "SLURM_LOCALID": "3"}, 0),
    ({}, 5),                                   # nothing says: the global rank
])
def test_local_rank_comes_from_torchrun_or_slurm(monkeypatch, variables, expected):
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    assert distributed.local_rank_of(5) == expected


def test_a_gpu_named_without_index_is_the_processes_own_gpu_on_its_machine():
    # rank 5 of 8 on its machine's second GPU: device="cuda" is that GPU, not cuda:0 for every process
    assert distributed._device("cuda", 1, 8) == torch.device("cuda", 1)
    assert distributed._device("cuda:0", 1, 8) == torch.device("cuda", 0)  # an explicit index is kept
    assert distributed._device("cuda", 0, 1) == torch.device("cuda")
    assert distributed._device("cpu", 1, 8) == torch.device("cpu")


def test_exit_waits_for_the_groups_worker_threads_to_go_idle():
    # a thread still running (as a gloo worker releasing its last collective) is waited for, then reported idle
    done = threading.Event()

    def busy(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
        done.set()

    worker = threading.Thread(target=busy, args=(0.3,))
    started = time.monotonic()
    worker.start()
    assert distributed.settle_threads(limit=5.0) is True
    assert done.is_set() and time.monotonic() - started >= 0.25
    worker.join()


def test_exit_gives_up_on_a_thread_that_never_idles():
    stop = threading.Event()
    worker = threading.Thread(target=lambda: [None for _ in iter(stop.is_set, True)])
    worker.start()
    try:
        assert distributed.settle_threads(limit=0.2) is False
    finally:
        stop.set()
        worker.join()
