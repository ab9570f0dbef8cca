"""The command line writes out the precisions `zoo.speed` and `zoo.benchmarking` accept (its parser imports no
torch): the written-out copies must stay the same as the modules' own."""
from __future__ import annotations

from zoo import benchmarking, speed
from zoo.commands import benchmark as benchmark_command
from zoo.commands import speed_options


def test_predict_and_evaluate_offer_the_precisions_zoo_speed_accepts():
    assert speed_options.PRECISIONS == speed.PRECISIONS


def test_zoo_benchmark_offers_the_precisions_benchmarking_accepts():
    assert benchmark_command.PRECISIONS == tuple(benchmarking.PRECISIONS)
