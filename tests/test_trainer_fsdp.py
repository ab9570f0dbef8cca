"""Sharded data parallel (``sharding="fsdp"``): two CPU processes (torchrun, gloo) with ``fully_shard``.

They train as two DDP processes do, checkpoint the whole gathered state, resume from it to the
same weights as a run that never stopped, and save the best model as a plain, loadable model.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import zoo
from zoo.cli import build_parser
from zoo.commands.finetune import training_options
from zoo.finetune import TrainerConfig
from zoo.finetune.config import SHARDINGS

REPO = Path(__file__).resolve().parent.parent

TRAIN = textwrap.dedent("""
    import os, sys
    import torch
    from torch import nn
    from zoo.finetune import fit

    out, sharding, epochs, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "resume"
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] - x[:, 1] > 0).long()
    torch.manual_seed(1 + int(os.environ["RANK"]))  # each process draws other weights: rank 0's are used
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 2))
    fit(model, (x, y), (x, y), epochs=epochs, batch_size=4, lr=0.05, seed=3, optimizer="adamw", grad_clip=1.0,
        scheduler="constant", sharding=None if sharding == "none" else sharding, resume=resume,
        checkpoint_dir=os.path.join(out, "run"), progress=False, verbose=False)
    if sharding == "fsdp":
        from torch.distributed.tensor import DTensor
        assert all(isinstance(p, DTensor) for p in model.parameters())  # the model stays sharded
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_processes(script: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(name, None)
    launch = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2",
              "--master-addr=127.0.0.1", f"--master-port={_free_port()}", str(script), *args]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    """The run's final weights, as its checkpoint holds them (gathered from the shards)."""
    return torch.load(folder / "run" / "last.pt", weights_only=True)["model"]


@pytest.mark.slow  # several torchrun launches: minutes on two cores
def test_fsdp_on_two_cpu_processes_trains_as_ddp_and_resumes_exactly(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    ddp, straight, resumed = (tmp_path / name for name in ("ddp", "fsdp", "resumed"))
    for folder in (ddp, straight, resumed):
        folder.mkdir()
    _two_processes(script, str(ddp), "none", "2", "fresh")
    _two_processes(script, str(straight), "fsdp", "2", "fresh")
    _two_processes(script, str(resumed), "fsdp", "1", "fresh")
    _two_processes(script, str(resumed), "fsdp", "2", "resume")

    ddp_weights, sharded, stopped_and_resumed = _weights(ddp), _weights(straight), _weights(resumed)
    # the checkpoint holds the whole model, gathered into plain tensors, as an unsharded run's does
    assert {k: v.shape for k, v in sharded.items()} == {k: v.shape for k, v in ddp_weights.items()}
    assert all(type(v) is torch.Tensor for v in sharded.values())
    for name in ddp_weights:
        assert torch.allclose(sharded[name], ddp_weights[name], atol=1e-5), name  # sharded == replicated
        assert torch.allclose(stopped_and_resumed[name], sharded[name], atol=1e-6), name  # resumed == straight
    # the best model is a whole model in a plain safetensors file
    best = load_file(straight / "run" / "best" / "model.safetensors")
    assert best.keys() == ddp_weights.keys() and all(best[k].shape == ddp_weights[k].shape for k in best)


def test_fsdp_refuses_what_it_does_not_go_with():
    with pytest.raises(zoo.InvalidArgumentError, match="'fsdp'"):
        TrainerConfig(sharding="zero3")
    with pytest.raises(zoo.InvalidArgumentError, match="ema_decay cannot go with sharding"):
        TrainerConfig(sharding="fsdp", ema_decay=0.99)
    with pytest.raises(zoo.InvalidArgumentError, match="feature_cache=True cannot go with sharding"):
        TrainerConfig(sharding="fsdp", feature_cache=True)


def test_the_command_line_flag_reaches_the_trainer_and_agrees_with_the_configuration():
    args = build_parser().parse_args(["finetune", "some_model", "--data", "DATA", "--sharding", "fsdp"])
    assert TrainerConfig(**training_options(args)).sharding == "fsdp"
    default = build_parser().parse_args(["finetune", "some_model", "--data", "DATA"])
    assert TrainerConfig(**training_options(default)).sharding is None
    assert SHARDINGS == ("fsdp",)  # the flag's choices are written out (the parser does not import torch)
