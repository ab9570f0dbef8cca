"""``zoo report``: rebuild the plots and report.html of a finished run.

    zoo report flowers-model
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .options import Subcommands


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("report", help="rebuild the plots and report.html of a finished fine-tune run",
                       description="Rebuild the plots (PNG) and the self-contained report.html of a finished run from "
                                   "what the run recorded (RUN/report/run.json and samples.json); neither the data "
                                   "nor the model is read.")
    p.add_argument("out", help="the run's --out folder (zoo finetune), or its checkpoint folder (fit(checkpoint_dir=))")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from ..finetune import report, run_dir  # only once the command runs

    out = Path(args.out).expanduser()
    run = out / run_dir.RUN_FOLDER
    folder = run if (run / report.REPORT_FOLDER).is_dir() else out
    print(f"report: {report.rebuild(folder)}")
    return 0
