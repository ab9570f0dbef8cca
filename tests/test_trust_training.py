"""Training runs that go wrong: NaN losses, a second run on the same folder, full disks, bad resumes.

Each case ends in one `zoo.ZooError` that says what to do, and the last good checkpoint and
model stay whole.
"""
from __future__ import annotations

import errno
import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import trainer_models as tm
from safetensors.torch import load_file
from torch import nn

import zoo
from zoo.finetune import Callback, Trainer, fit, run_dir
from zoo.finetune import checkpoint as ckpt
from zoo.finetune.checkpoint import CheckpointError, NonFiniteError
from zoo.finetune.run_dir import OutputError

QUIET = {"progress": False, "verbose": False}


def _mlp(hidden: int = 8) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, hidden), nn.ReLU(), nn.Linear(hidden, 2))


def _data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long()


def _write_lock(folder: Path, pid: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / run_dir.LOCK
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "token": "other", "started": "earlier"}))
    return lock


def _dead_pid() -> int:
    process = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                             timeout=60)
    return int(process.stdout)


class NanAtCall:
    """Cross-entropy, except that training step `call` (counting from 1) gives NaN."""

    def __init__(self, call: int):
        self.call, self.calls = call, 0

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = nn.functional.cross_entropy(output, target)
        return loss * float("nan") if self.calls == self.call else loss


# ---------------------------------------------------------------------------- numerics


def test_a_loss_that_turns_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    x, y = _data()  # 4 steps per epoch: call 6 is epoch 2, step 2
    with pytest.raises(NonFiniteError, match=r"loss became nan at epoch 2, step 2; lower the learning rate") as error:
        fit(_mlp(), (x, y), epochs=3, batch_size=8, loss=NanAtCall(6), checkpoint_dir=tmp_path, **QUIET)
    assert isinstance(error.value, zoo.ZooError) and str(tmp_path / "last.pt") in str(error.value)
    state = ckpt.load(tmp_path / "last.pt")
    assert state["epoch"] == 1 and all(torch.isfinite(t).all() for t in state["model"].values())
    best = load_file(tmp_path / "best" / "model.safetensors")
    assert all(torch.equal(best[name], state["model"][name]) for name in best)  # epoch 1's weights
    assert not (tmp_path / run_dir.LOCK).exists()


def test_weights_with_nan_are_never_saved_as_the_best_model(tmp_path):
    model = _mlp()
    ckpt.save_best(model, tmp_path / "best")
    good = (tmp_path / "best" / "model.safetensors").read_bytes()
    with torch.no_grad():
        model[0].weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"NaN or Inf values \(first in '0.weight'\)"):
        ckpt.save_best(model, tmp_path / "best")
    assert (tmp_path / "best" / "model.safetensors").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


def test_with_a_patience_only_that_many_non_finite_losses_in_a_row_stop_a_run():
    from zoo.finetune.loop import NonFiniteLosses

    watch = NonFiniteLosses(patience=3)  # as with a gradient scaler, which skips inf steps itself
    for step, value in enumerate([math.nan, 1.0, math.inf, math.nan, 2.0, math.nan, math.nan], start=1):
        watch.record(torch.tensor(value), 1, step)
    assert watch.failure() is None and watch.in_a_row == 2
    watch.record(torch.tensor(math.inf), 1, 8)
    value, epoch, step = watch.failure()  # the first of the three
    assert math.isnan(value) and (epoch, step) == (1, 6)


# ---------------------------------------------------------------------------- one run per folder


def test_a_second_run_on_a_folder_in_use_is_refused_and_leaves_its_files_alone(tmp_path):
    lock = _write_lock(tmp_path, os.getppid())  # a live process that is not this one
    half_written = tmp_path / ".last.pt.abc123.tmp"
    half_written.write_bytes(b"the other run is writing this")
    with pytest.raises(OutputError, match=rf"in use by another run \(pid {os.getppid()} "):
        fit(_mlp(), _data(), epochs=1, batch_size=8, checkpoint_dir=tmp_path, **QUIET)
    assert half_written.read_bytes() == b"the other run is writing this"
    assert json.loads(lock.read_text())["token"] == "other"
    assert not (tmp_path / "last.pt").exists()


def test_a_dead_runs_lock_is_taken_over_held_during_the_run_and_released_after(tmp_path):
    _write_lock(tmp_path, _dead_pid())
    (tmp_path / ".last.pt.dead.tmp").write_bytes(b"half")
    seen = []

    class Watch(Callback):
        def on_step_end(self, trainer, step, loss):
            seen.append(json.loads((tmp_path / run_dir.LOCK).read_text())["pid"])
            if interrupt and step == 2:
                raise KeyboardInterrupt

    interrupt = False
    fit(_mlp(), _data(), epochs=1, batch_size=8, checkpoint_dir=tmp_path, callbacks=[Watch()], **QUIET)
    assert set(seen) == {os.getpid()}
    assert not (tmp_path / ".last.pt.dead.tmp").exists() and not (tmp_path / run_dir.LOCK).exists()
    interrupt = True
    with pytest.raises(KeyboardInterrupt):
        fit(_mlp(), _data(), epochs=1, batch_size=8, checkpoint_dir=tmp_path, callbacks=[Watch()], **QUIET)
    assert not (tmp_path / run_dir.LOCK).exists()


# ---------------------------------------------------------------------------- write errors


def test_a_full_disk_during_a_checkpoint_save_is_one_error_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    class DiskFillsUp(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            if epoch == 1:
                def full(*args):
                    raise OSError(errno.ENOSPC, "No space left on device")
                monkeypatch.setattr(os, "replace", full)

    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*last\.pt: No space left on device; free"):
        fit(_mlp(), _data(), epochs=2, batch_size=8, checkpoint_dir=tmp_path, callbacks=[DiskFillsUp()], **QUIET)
    monkeypatch.undo()
    state = ckpt.load(tmp_path / "last.pt")
    assert state["epoch"] == 1
    _mlp().load_state_dict(state["model"])
    assert not list(tmp_path.glob(".*.tmp")) and not (tmp_path / run_dir.LOCK).exists()


def test_an_unwritable_best_model_folder_is_one_error_and_keeps_the_previous_best(tmp_path, monkeypatch):
    ckpt.save_best(_mlp(), tmp_path / "best")
    before = (tmp_path / "best" / "model.safetensors").read_bytes()

    def refused(model, directory, labels=None, extra=None):
        raise PermissionError(errno.EACCES, "Permission denied", str(directory))

    monkeypatch.setattr(ckpt, "save_model", refused)
    with pytest.raises(CheckpointError, match=r"cannot write best model .*best: Permission denied"):
        ckpt.save_best(_mlp(hidden=4), tmp_path / "best")
    assert (tmp_path / "best" / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]


# ---------------------------------------------------------------------------- resume


def test_resuming_with_another_class_count_or_model_is_refused_before_loading(tmp_path):
    with tm.trainer_cards_on_one_thread():
        images = torch.randn(8, 3, 16, 16)
        fit(zoo.create("trainer_conv", num_classes=3), (images, torch.arange(8) % 3), epochs=1, batch_size=4,
            strategy="no_freeze", checkpoint_dir=tmp_path / "conv", **QUIET)
        with pytest.raises(CheckpointError, match=r"written for trainer_conv with 3 classes, this run trains "
                                                  r"trainer_conv with 4 classes"):
            fit(zoo.create("trainer_conv", num_classes=4), (images, torch.arange(8) % 4), epochs=2, batch_size=4,
                strategy="no_freeze", checkpoint_dir=tmp_path / "conv", resume=True, **QUIET)
    fit(_mlp(), _data(), epochs=1, batch_size=8, checkpoint_dir=tmp_path / "mlp", **QUIET)
    with pytest.raises(CheckpointError, match=r"'0.weight' has shape \[8, 4\] there and \[16, 4\] here"):
        fit(_mlp(hidden=16), _data(), epochs=2, batch_size=8, checkpoint_dir=tmp_path / "mlp", resume=True, **QUIET)


@pytest.mark.parametrize("damage, message", [
    (lambda path: path.mkdir(), "is a folder, not a checkpoint file"),
    (lambda path: torch.save({"format": 1, "model": {}}, path), "lacks epoch, step, global_step, optimizer, rng"),
    (lambda path: torch.save([1, 2, 3], path), "is not a zoo training checkpoint"),
])
def test_a_last_pt_that_is_a_folder_partial_or_foreign_is_a_clear_error(tmp_path, damage, message):
    damage(tmp_path / "last.pt")
    with pytest.raises(CheckpointError, match=message):
        fit(_mlp(), _data(), epochs=1, batch_size=8, checkpoint_dir=tmp_path, resume=True, **QUIET)


def test_a_resume_keeps_the_checkpoints_options_and_only_epochs_may_change(tmp_path, capsys):
    fit(_mlp(), _data(), epochs=1, batch_size=8, lr=0.01, checkpoint_dir=tmp_path, **QUIET)
    for changed, message in (({"lr": 0.1}, "lr=0.01, this run has lr=0.1"),
                             ({"optimizer": "sgd"}, "optimizer=adamw, this run has optimizer=sgd"),
                             ({"scheduler": "linear"}, "scheduler=cosine, this run has scheduler=linear")):
        options = {"lr": 0.01, **changed}
        with pytest.raises(CheckpointError, match=message + r"; resume with the same"):
            fit(_mlp(), _data(), epochs=2, batch_size=8, checkpoint_dir=tmp_path, resume=True, **options, **QUIET)
    result = fit(_mlp(), _data(), epochs=2, batch_size=8, lr=0.01, checkpoint_dir=tmp_path, resume=True,
                 progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert "the checkpoint's run had epochs=1; this run goes on to epochs=2" in capsys.readouterr().out


@pytest.mark.parametrize("option, value", [
    ("lr", 0), ("lr", -1e-3), ("lr", float("nan")), ("lr", float("inf")), ("lr", True),
    ("num_workers", -1), ("checkpoint_every", 0), ("batch_size", 2.5), ("epochs", "3"),
])
def test_out_of_range_trainer_options_are_clear_errors(option, value):
    with pytest.raises(zoo.InvalidArgumentError, match=rf"{option} must be "):
        Trainer(**{option: value})


# ---------------------------------------------------------------------------- replacing a model folder


def _model_folder(path: Path, tag: str, extra: str | None = None) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(tag)
    (path / "model.safetensors").write_text(tag)
    if extra:
        (path / extra).write_text(tag)
    return path


@pytest.mark.parametrize("killed_after", [1, 2])
def test_a_model_folder_is_replaced_as_one_unit_even_when_killed_in_between(tmp_path, monkeypatch, killed_after):
    """Renames: the run folder into the new version, OUT aside, the new version to OUT. A kill after
    any of them leaves both versions whole; the next run puts the old one back with its run folder."""
    out = _model_folder(tmp_path / "out", "old", extra="old_only.txt")
    (out / run_dir.RUN_FOLDER).mkdir()
    (out / run_dir.RUN_FOLDER / "last.pt").write_text("run state")
    new = _model_folder(tmp_path / "new", "new")

    class Killed(BaseException):
        pass

    real_rename, calls = os.rename, []

    def rename_then_die(source, target):
        calls.append(source)
        if len(calls) > killed_after:
            raise Killed  # the process is gone: nothing after this point runs
        real_rename(source, target)

    monkeypatch.setattr(os, "rename", rename_then_die)
    with pytest.raises(Killed):
        run_dir.publish(new, out)
    monkeypatch.undo()
    for version in [out, *tmp_path.glob(".out.*")]:
        if (version / "config.json").exists():  # each version whole: never new labels next to old weights
            assert (version / "config.json").read_text() == (version / "model.safetensors").read_text()
    with run_dir.claim(out, overwrite=True) as run:
        assert (run / "last.pt").read_text() == "run state"
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.json", "model.safetensors", "old_only.txt"]
    assert (out / "config.json").read_text() == "old" and not list(tmp_path.glob(".out.*"))

    run_dir.publish(new, out)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.json", "model.safetensors"]
    assert (out / "model.safetensors").read_text() == "new" and (out / "checkpoints" / "last.pt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]
