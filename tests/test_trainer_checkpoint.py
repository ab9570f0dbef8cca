"""Checkpoints: a run killed while saving keeps its previous checkpoint, and resumes from it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from zoo.finetune import checkpoint as ckpt
from zoo.finetune import fit

REPO = Path(__file__).resolve().parent.parent

# Trains two epochs; while the second epoch's checkpoint is being written, the file write
# stalls half-way (a slow disk) so the test can kill the process in the middle of the save.
KILLED_RUN = textwrap.dedent("""
    import io, sys, time
    import torch
    from torch import nn
    from zoo.finetune import Callback, fit
    import zoo.finetune.checkpoint as ckpt

    real_save = torch.save

    def stalling_save(obj, handle):
        buffer = io.BytesIO()
        real_save(obj, buffer)
        data = buffer.getvalue()
        handle.write(data[: len(data) // 2])
        handle.flush()
        print("SAVING", flush=True)
        time.sleep(60)

    class StallSecondSave(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            if epoch == 1:
                torch.save = stalling_save

    torch.manual_seed(0)
    x = torch.randn(64, 4); y = (x[:, 0] > 0).long()
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    fit(model, (x, y), epochs=3, batch_size=16, checkpoint_dir=sys.argv[1], callbacks=[StallSecondSave()],
        progress=False, verbose=False, handle_interrupt=False)
""")


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def test_a_run_killed_during_a_save_keeps_the_previous_checkpoint(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, str(script), str(run_dir)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert line.strip() == "SAVING", process.stderr.read()
        partial = list(run_dir.glob(".last.pt.*.tmp"))
        assert partial and partial[0].stat().st_size > 0  # the new checkpoint is half written
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    state = ckpt.load(run_dir / "last.pt")  # the previous checkpoint, whole
    assert state["epoch"] == 1 and state["step"] == 0
    _model().load_state_dict(state["model"])

    # resuming cleans the half-written file up and finishes the run
    x = torch.randn(64, 4)
    result = fit(_model(), (x, (x[:, 0] > 0).long()), epochs=3, batch_size=16, checkpoint_dir=run_dir, resume=True,
                 progress=False, verbose=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert not list(run_dir.glob(".*.tmp"))


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "last.pt"
    ckpt.save({"epoch": 1}, target)

    def broken(handle):
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        ckpt.atomic_write(target, broken)
    assert ckpt.load(target) == {"epoch": 1}
    assert list(tmp_path.iterdir()) == [target]


def test_a_damaged_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ckpt.CheckpointError, match="delete it to start over"):
        ckpt.load(tmp_path / "last.pt")
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint"):
        ckpt.load(tmp_path / "missing.pt")


def test_checkpoints_load_with_weights_only(tmp_path):
    """Checkpoints hold tensors and plain data only: nothing in them can run code on load."""
    x = torch.randn(32, 4)
    fit(_model(), (x, (x[:, 0] > 0).long()), epochs=1, batch_size=8, checkpoint_dir=tmp_path,
        progress=False, verbose=False)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "step", "history"} <= set(state)


def test_save_best_replaces_a_whole_directory(tmp_path):
    model = _model()
    ckpt.save_best(model, tmp_path / "best", extra={"epoch": 1})
    first = (tmp_path / "best" / "model.safetensors").read_bytes()
    with torch.no_grad():
        model[0].weight.add_(1)
    ckpt.save_best(model, tmp_path / "best", extra={"epoch": 2})
    assert (tmp_path / "best" / "model.safetensors").read_bytes() != first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
