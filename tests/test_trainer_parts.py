"""The trainer's parts: a checked configuration, callbacks with state, the built-in best-model
tracker, messages through logging, one no-decay rule and one tied-tensor rule."""
from __future__ import annotations

import dataclasses
import json
import logging
import warnings

import pytest
import torch
from conftest import run_python
from safetensors.torch import load_file, load_model
from torch import nn

import zoo
from zoo.finetune import Callback, Trainer, TrainerConfig, distributed, fit
from zoo.finetune.checkpoint import CheckpointError

QUIET = {"progress": False, "verbose": False}


def _mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def _data(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    return x, (x[:, 0] > 0).long()


class CountSteps(Callback):
    """Counts training steps; its count is state a resumed run must continue from."""

    def __init__(self) -> None:
        self.steps = 0

    def on_step_end(self, trainer, step, loss):
        self.steps += 1

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


class StopAt(Callback):
    def __init__(self, global_step: int) -> None:
        self.global_step = global_step

    def on_step_end(self, trainer, step, loss):
        if trainer.global_step == self.global_step:
            trainer.request_stop()


# ---------------------------------------------------------------------------- callbacks


def test_a_step_counting_callback_resumes_its_count_after_a_stop(tmp_path):
    options = dict(epochs=3, batch_size=8, checkpoint_dir=tmp_path, **QUIET)  # 4 steps an epoch
    first = CountSteps()
    assert fit(_mlp(), _data(), callbacks=[first, StopAt(6)], **options).stopped
    assert first.steps == 6
    resumed = CountSteps()  # a fresh object, as in a new process
    fit(_mlp(), _data(), callbacks=[resumed], resume=True, **options)
    assert resumed.steps == 12  # the 6 before the stop and the 6 after


def test_two_callbacks_of_one_class_keep_their_own_state(tmp_path):
    options = dict(epochs=2, batch_size=8, checkpoint_dir=tmp_path, **QUIET)
    counters = [CountSteps(), CountSteps()]
    counters[1].steps = 100
    fit(_mlp(), _data(), callbacks=[*counters, StopAt(2)], **options)
    again = [CountSteps(), CountSteps()]
    fit(_mlp(), _data(), callbacks=again, resume=True, **options)
    assert [c.steps for c in again] == [8, 108]


def test_callback_state_a_checkpoint_cannot_hold_is_refused_naming_the_callback(tmp_path):
    class KeepsASet(Callback):
        def state_dict(self):
            return {"seen": {1, 2}}

    with pytest.raises(CheckpointError, match=r"callback .*KeepsASet: state_dict\(\) holds a set at state\['seen'\]"):
        fit(_mlp(), _data(), epochs=1, batch_size=8, checkpoint_dir=tmp_path, callbacks=[KeepsASet()], **QUIET)


def test_an_on_method_that_matches_no_hook_warns_once_naming_the_hooks():
    class Misnamed(Callback):
        def on_epoch_begin(self, trainer, epoch):  # the hook is on_epoch_start
            raise AssertionError("never called")

    with pytest.warns(UserWarning, match=r"Misnamed has a method on_epoch_begin\(\) that matches no hook, so it never "
                                         r"runs; the hooks are on_fit_start, on_epoch_start, on_step_end") as caught:
        trainer = Trainer(epochs=2, batch_size=8, callbacks=[Misnamed()], **QUIET)
    assert len(caught) == 1
    with warnings.catch_warnings(record=True) as later:
        warnings.simplefilter("always")
        trainer.fit(_mlp(), _data())  # no second warning (and the method is never called) while the run goes on
    assert not [w for w in later if "matches no hook" in str(w.message)]


def test_the_best_model_tracker_is_a_callback_other_callbacks_can_read(tmp_path):
    seen = []

    class ReadBest(Callback):
        def on_epoch_end(self, trainer, epoch, metrics):
            seen.append((trainer.best.monitor, trainer.best.epoch))

    x, y = _data()
    result = fit(_mlp(), (x, y), (x, y), epochs=2, batch_size=8, checkpoint_dir=tmp_path, callbacks=[ReadBest()],
                 **QUIET)
    assert isinstance(result.best_epoch, int) and seen[0] == ("val_accuracy", 1)  # updated before the user's hook
    assert json.loads((tmp_path / "best" / "training.json").read_text())["epoch"] == result.best_epoch


# ---------------------------------------------------------------------------- messages


def test_messages_are_records_on_zoo_finetune_and_only_the_first_process_emits_them(caplog, capsys, monkeypatch):
    with caplog.at_level(logging.INFO, logger="zoo.finetune"):
        fit(_mlp(), _data(), epochs=1, batch_size=8, **QUIET)
    lines = [r.getMessage() for r in caplog.records if r.name == "zoo.finetune"]
    assert any(line.startswith("epoch 1/1: epoch=1 train_loss=") for line in lines)
    assert capsys.readouterr().out == ""  # verbose=False: nothing printed, the records go to logging only

    caplog.clear()
    monkeypatch.setattr(distributed, "setup", lambda device=None: distributed.Context(rank=1))
    with caplog.at_level(logging.INFO, logger="zoo.finetune"):
        fit(_mlp(), _data(), epochs=1, batch_size=8, progress=False)
    assert [r for r in caplog.records if r.name == "zoo.finetune"] == []
    assert capsys.readouterr().out == ""


# ---------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("option, value", [
    ("seed", "0"), ("momentum", "0.9"), ("grad_clip", 0), ("weight_decay", -0.1), ("callbacks", Callback()),
    ("loss", 3), ("strategy", "freez"), ("compile", "yes"), ("device", 0), ("resume", 3), ("labels", "ab"),
])
def test_every_trainer_option_is_checked_when_the_trainer_is_made_naming_it(option, value):
    with pytest.raises(zoo.InvalidArgumentError, match=rf"^{option} must be "):
        Trainer(**{option: value})


def test_an_unknown_trainer_option_is_refused_naming_the_closest_one():
    with pytest.raises(zoo.InvalidArgumentError, match="no option 'epoch'; did you mean 'epochs'"):
        fit(_mlp(), _data(), epoch=3)


def test_a_configuration_is_read_only_and_serves_several_trainers():
    config = TrainerConfig(epochs=2, lr=0.01, checkpoint_dir="run")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 3
    trainer = Trainer(config, lr=0.1)
    assert (trainer.config.epochs, trainer.config.lr, config.lr) == (2, 0.1, 0.01)
    assert trainer.config.checkpoint_dir == config.run_folder and config.run_folder.name == "run"
    with pytest.raises(zoo.InvalidArgumentError, match="^epochs must be"):
        dataclasses.replace(config, epochs=-1)


def test_options_read_from_the_trainer_still_work_with_a_deprecation_warning():
    trainer = Trainer(epochs=3, optimizer="sgd")
    with pytest.warns(DeprecationWarning, match="trainer.config.epochs"):
        assert trainer.epochs == 3
    with pytest.warns(DeprecationWarning, match="trainer.config.optimizer"):
        assert trainer.optimizer_spec == "sgd"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trainer.optimizer is None and trainer.history == []  # run state: no warning


def test_the_named_choices_import_without_torch():
    result = run_python("""
        import sys
        from zoo.finetune.options import OPTIMIZERS, PRECISIONS, SCHEDULERS, STRATEGY_NAMES
        print('torch' in sys.modules, STRATEGY_NAMES[0], OPTIMIZERS[0])
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "freeze_unfreeze", "adamw"]


def test_the_named_strategies_are_the_registered_ones():
    from zoo.finetune.options import DEFAULT_STRATEGY, STRATEGY_NAMES
    from zoo.finetune.strategies import DEFAULT, STRATEGIES

    assert tuple(STRATEGIES) == STRATEGY_NAMES and DEFAULT == DEFAULT_STRATEGY


# ---------------------------------------------------------------------------- one rule each


def test_a_plain_module_gets_the_no_decay_rule_of_param_groups():
    model = nn.Sequential(nn.Linear(6, 6), nn.Unflatten(1, (2, 3)), nn.LayerNorm((2, 3)), nn.Flatten(),
                          nn.Linear(6, 2))
    trainer = Trainer(epochs=1, batch_size=8, weight_decay=0.1, **QUIET)
    trainer.fit(model, (torch.randn(16, 6), torch.arange(16) % 2))
    decay_of = {id(p): group["weight_decay"] for group in trainer.optimizer.param_groups for p in group["params"]}
    assert decay_of[id(model[2].weight)] == 0.0  # a 2-D norm weight: a norm, so no decay (as in param_groups)
    assert decay_of[id(model[0].weight)] == 0.1 and decay_of[id(model[0].bias)] == 0.0


def test_a_plain_modules_tied_weights_are_saved_once_and_load_back_tied(tmp_path):
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Linear(4, 4, bias=False)
            self.out = nn.Linear(4, 4, bias=False)
            self.out.weight = self.embed.weight

        def forward(self, x):
            return self.out(torch.relu(self.embed(x)))

    model = Tied()
    result = fit(model, _data(), epochs=1, batch_size=8, checkpoint_dir=tmp_path, **QUIET)
    assert set(load_file(result.best_dir / "model.safetensors")) == {"embed.weight"}
    loaded = Tied()
    load_model(loaded, result.best_dir / "model.safetensors")
    assert loaded.out.weight is loaded.embed.weight and torch.equal(loaded.embed.weight, model.embed.weight)
