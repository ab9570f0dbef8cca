"""`zoo finetune` offers the trainer's own names for its options (`zoo.finetune.options`, which imports no torch)."""
from __future__ import annotations

import argparse

import pytest

from zoo.cli import build_parser
from zoo.finetune import options


def finetune_option(flag: str) -> argparse.Action:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return next(a for a in commands.choices["finetune"]._actions if flag in a.option_strings)


@pytest.mark.parametrize(("flag", "names"), [
    ("--strategy", options.STRATEGY_NAMES), ("--optimizer", options.OPTIMIZERS),
    ("--scheduler", options.SCHEDULERS), ("--precision", options.PRECISIONS),
])
def test_finetune_offers_the_trainers_own_names(flag, names):
    option = finetune_option(flag)
    assert option.choices is names  # the tuple the trainer checks, not a copy that could drift
    assert option.default in (None, names[0])
