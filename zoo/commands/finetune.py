"""``zoo finetune``: fine-tune a model on your data and save the best one.

    zoo finetune resnet18 --data flowers/train --val flowers/val --epochs 3 --out flowers-model
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sized
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .. import data as zdata
from ..finetune import run_dir
from ..finetune.options import (
    DEFAULT_STRATEGY,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULERS,
    STRATEGY_NAMES,
)
from .loading import model_to_finetune
from .options import (
    Subcommands,
    add_table_arguments,
    non_negative_int,
    positive_float,
    positive_int,
    table_columns,
)
from .output import print_json

if TYPE_CHECKING:
    from torch import nn

    from ..finetune import FitResult


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("finetune",
                       help="fine-tune a model on a folder of images or audio clips, or a CSV/JSONL of texts",
                       description="Fine-tune NAME on your data and save the best model (by validation accuracy) "
                                   "to --out, in the format zoo.create('local-dir:OUT') and the Hub read.")
    p.add_argument("name", help="model, recipe, name.tag, local-dir:PATH or hf-hub:org/repo")
    p.add_argument("--data", required=True, help="training data: a folder with one sub-folder per class, "
                                                 "or a CSV/JSONL file with text and label columns")
    p.add_argument("--val", help="validation data, laid out like --data (default: measure on --data)")
    p.add_argument("--epochs", type=non_negative_int, default=3,
                   help="passes over the data, 0 or more (default: %(default)s)")
    p.add_argument("--strategy", default=None, choices=STRATEGY_NAMES,
                   help=f"what trains when (default: {DEFAULT_STRATEGY})")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate, above 0 (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="samples per step and process, 1 or more")
    # the trainer's own names; the first of each is its default
    p.add_argument("--optimizer", default=OPTIMIZERS[0], choices=OPTIMIZERS, help="(default: %(default)s)")
    p.add_argument("--scheduler", default=SCHEDULERS[0], choices=SCHEDULERS, help="(default: %(default)s)")
    p.add_argument("--precision", default=PRECISIONS[0], choices=PRECISIONS, help="(default: %(default)s)")
    p.add_argument("--out", default="zoo-finetuned",
                   help="folder for the fine-tuned model (default: %(default)s): new or empty, or one zoo wrote "
                        "before with --resume or --overwrite; the run's checkpoints go to OUT/checkpoints")
    p.add_argument("--resume", action="store_true", help="continue the run whose checkpoints are in OUT/checkpoints")
    p.add_argument("--overwrite", action="store_true",
                   help="use an --out that holds a model or other files: its contents are replaced by the new model")
    p.add_argument("--checkpoint-every", type=positive_int,
                   help="also checkpoint every N steps inside an epoch (N >= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=non_negative_int, default=0, help="data loading processes, 0 or more")
    p.add_argument("--threads", type=non_negative_int,
                   help="CPU threads for torch (default or 0: torch's choice, one per core)")
    p.add_argument("--scratch", action="store_true", help="start from random weights instead of pretrained ones")
    p.add_argument("--no-augment", action="store_true", help="no random crops or flips on the training data")
    add_table_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run's summary as JSON at the end")
    p.set_defaults(func=cmd_finetune)


def cmd_finetune(args: argparse.Namespace) -> int:
    classes = zdata.class_names(args.data, **table_columns(args))
    out = Path(args.out).expanduser()
    if not _first_process():  # torchrun: the first process owns --out and publishes
        return _finetune(args, classes, out, out / run_dir.RUN_FOLDER)
    with run_dir.claim(out, overwrite=args.overwrite, resume=args.resume) as run:
        return _finetune(args, classes, out, run)


def _finetune(args: argparse.Namespace, classes: list[str], out: Path, run: Path) -> int:
    """Train on the data and publish the best model to `out` (`run` is the run folder inside it)."""
    import torch  # only once the command runs

    from ..finetune import Trainer  # imports torch: only once the command runs

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the new head's initial weights, so "accuracy before" repeats too
    model = model_to_finetune(args.name, num_classes=len(classes), scratch=args.scratch)
    train, val = _datasets(args, model, classes)
    measured_on = "validation" if args.val else "training"
    trainer = Trainer(
        epochs=args.epochs, lr=args.lr, batch_size=args.batch_size, strategy=args.strategy, optimizer=args.optimizer,
        scheduler=args.scheduler, precision=args.precision, checkpoint_dir=run,
        checkpoint_every=args.checkpoint_every, resume=args.resume, seed=args.seed, num_workers=args.workers,
        labels=classes, progress=not args.quiet,
    )
    say = _printer()
    say(f"{len(train)} training and {len(val)} {measured_on} samples, {len(classes)} classes: "
        f"{', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}")
    before = None
    if not (args.resume and (run / "last.pt").exists()):
        before = Trainer(batch_size=args.batch_size, precision=args.precision, num_workers=args.workers,
                         progress=False, verbose=False).evaluate(model, val)["accuracy"]
        say(f"accuracy before fine-tuning: {before:.1%} on the {measured_on} data")
    result = trainer.fit(model, train, val)
    if result.stopped:
        print(f"stopped; continue with: zoo finetune {args.name} ... --out {out} --resume", file=sys.stderr)
        return 130
    if not trainer.context.is_main:
        return 0
    if result.best_dir is None:
        say("nothing was trained (0 epochs)")
        return 0
    run_dir.publish(result.best_dir, out)
    _report(args, result, classes, out, before=before, measured_on=measured_on, say=say)
    return 0


def _datasets(args: argparse.Namespace, model: nn.Module, classes: list[str]) -> tuple[Sized, Sized]:
    """The training data (augmented unless --no-augment) and the data accuracy is measured on.

    zoo's readers are map-style datasets: each has a length, which the run's first line reports.
    """
    options: dict[str, Any] = {"classes": classes, "skip_bad": args.skip_bad, **table_columns(args)}
    train = zdata.dataset_for(model, args.data, train=True, augment=not args.no_augment, **options)
    val = zdata.dataset_for(model, args.val or args.data, **options)
    return cast(Sized, train), cast(Sized, val)


def _report(args: argparse.Namespace, result: FitResult, classes: list[str], out: Path, *, before: float | None,
            measured_on: str, say: Callable[[str], None]) -> None:
    """The accuracy the published model reached, where it is, and the run as JSON with ``--json``."""
    after = result.history[result.best_epoch - 1].get("val_accuracy")
    if after is not None:
        say(f"accuracy after fine-tuning:  {after:.1%} on the {measured_on} data (epoch {result.best_epoch})")
    say(f"saved to {out}; load it with zoo.create('local-dir:{out}') or: zoo predict {out} FILE ...")
    if args.json:
        print_json({"before": before, "after": after, "best_epoch": result.best_epoch, "out": str(out),
                    "classes": classes,
                    "history": [{k: v for k, v in h.items() if not k.endswith("confusion")} for h in result.history]})


def _first_process() -> bool:
    """Whether this is the first (or only) process of the run: ``torchrun`` starts several and sets ``RANK``."""
    return os.environ.get("RANK", "0") == "0"


def _printer() -> Callable[[str], None]:
    """print on the first process only."""
    if _first_process():
        return lambda message: print(message, flush=True)
    return lambda message: None
