"""param_groups scales each group's rate once, whichever scheduler drives it: torch's or timm's.

The convention: a group's ``lr`` is already scaled (layer decay, multipliers) and no group carries
``lr_scale``, the key timm's schedulers multiply by. So the input-side group of a model with
``layer_decay=0.5`` over three groups runs at a quarter of the head's rate at every step.
"""
from __future__ import annotations

import math

import pytest
import torch
import trainer_models as tm

import zoo
from zoo.finetune import param_groups

BASE_LR = 1e-3
STEM_SCALE = 0.25  # layer_decay 0.5, two groups before the head: stem, stage, head
STEPS = 12


@pytest.fixture
def model():
    tm.register_cards()
    return zoo.create("trainer_conv")


def _optimizers(model):
    """The model's optimizer over param_groups, and a one-group reference at the base rate."""
    groups = param_groups(model, BASE_LR, layer_decay=0.5)
    assert [g["group"] for g in groups][0] == "stem"
    reference = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=BASE_LR)
    return torch.optim.AdamW(groups, lr=BASE_LR), reference


def _stem_lr(optimizer) -> float:
    return next(g["lr"] for g in optimizer.param_groups if g["group"] == "stem")


def test_no_group_carries_an_lr_scale_beside_its_scaled_lr(model):
    groups = param_groups(model, BASE_LR, layer_decay=0.5, lr_mult={"head": 10.0})
    assert all("lr_scale" not in g for g in groups)
    rates = {g["group"]: g["lr"] for g in groups}
    assert rates["stem"] == pytest.approx(BASE_LR * STEM_SCALE) and rates["head"] == pytest.approx(BASE_LR * 10)


TORCH_SCHEDULERS = {
    "LambdaLR cosine": lambda opt: torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / STEPS))),
    "CosineAnnealingLR": lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS),
    "StepLR": lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    "LinearLR warm-up": lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=4),
    "OneCycleLR": lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in opt.param_groups], total_steps=STEPS + 1),
}


@pytest.mark.parametrize("make", TORCH_SCHEDULERS.values(), ids=TORCH_SCHEDULERS.keys())
def test_torch_schedulers_give_the_stem_its_scaled_rate_at_every_step(model, make):
    optimizer, reference = _optimizers(model)
    schedulers = make(optimizer), make(reference)
    for _ in range(STEPS):
        assert _stem_lr(optimizer) == pytest.approx(reference.param_groups[0]["lr"] * STEM_SCALE, rel=1e-9)
        for opt, scheduler in zip((optimizer, reference), schedulers):
            opt.step()
            scheduler.step()


class LrScaleScheduler:
    """The rule timm's schedulers (``timm.scheduler.Scheduler.update_groups``) follow: each group's
    rate is its initial rate times the schedule's factor, times ``lr_scale`` when the group has one."""

    def __init__(self, optimizer, factor):
        self.optimizer, self.factor = optimizer, factor
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.step(0)

    def step(self, t: int) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = group["initial_lr"] * self.factor(t) * group.get("lr_scale", 1.0)


def test_a_scheduler_that_multiplies_by_lr_scale_scales_the_stem_once(model):
    optimizer, reference = _optimizers(model)
    factor = lambda t: 0.5 * (1 + math.cos(math.pi * t / STEPS))  # noqa: E731
    schedulers = LrScaleScheduler(optimizer, factor), LrScaleScheduler(reference, factor)
    for t in range(STEPS):
        for scheduler in schedulers:
            scheduler.step(t)
        assert _stem_lr(optimizer) == pytest.approx(reference.param_groups[0]["lr"] * STEM_SCALE, rel=1e-9)


def test_timm_cosine_scheduler_scales_the_stem_once(model):
    cosine = pytest.importorskip("timm.scheduler").CosineLRScheduler
    optimizer, reference = _optimizers(model)
    schedulers = [cosine(opt, t_initial=STEPS, lr_min=0.0) for opt in (optimizer, reference)]
    for t in range(STEPS):
        for scheduler in schedulers:
            scheduler.step_update(t)
        assert _stem_lr(optimizer) == pytest.approx(reference.param_groups[0]["lr"] * STEM_SCALE, rel=1e-9)
