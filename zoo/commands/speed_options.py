"""``--threads`` and ``--precision`` for the commands that run a model (`zoo.speed` chooses when they are not given).

No torch here: the command line parses before torch is imported.
"""
from __future__ import annotations

import argparse

from .options import non_negative_int

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # zoo.speed.PRECISIONS, without importing torch


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=non_negative_int,
                        help="CPU threads for torch (default or 0: one per physical core, unless OMP_NUM_THREADS "
                             "says otherwise)")
    parser.add_argument("--precision", default=PRECISIONS[0], choices=PRECISIONS,
                        help="(default: %(default)s: bf16 on GPUs that run it natively, else fp32)")
