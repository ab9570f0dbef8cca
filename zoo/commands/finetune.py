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
from ..cards import ModelCard
from ..errors import InvalidArgumentError
from ..finetune import run_dir
from ..finetune.logger_names import LOGGERS
from ..finetune.options import (
    DEFAULT_STRATEGY,
    MONITOR_MODES,
    OPTIMIZERS,
    PRECISIONS,
    SCHEDULERS,
    STRATEGY_NAMES,
)
from .history import HISTORY_CSV, HISTORY_JSON, HistoryFiles
from .loading import check_scratch, finetune_card, model_to_finetune
from .options import (
    Subcommands,
    add_table_arguments,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    table_columns,
)
from .output import print_json

if TYPE_CHECKING:
    from torch import nn

    from ..finetune import FitResult, Strategy, Trainer


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("finetune",
                       help="fine-tune a model on a folder of images or audio clips, or a CSV/JSONL of texts",
                       description="Fine-tune NAME on your data and save the best model (by validation accuracy, "
                                   "or --monitor) to --out, in the format zoo.create('local-dir:OUT') and the Hub "
                                   "read.")
    p.add_argument("name", help="model, recipe, name.tag, local-dir:PATH or hf-hub:org/repo")
    p.add_argument("--data", required=True, help="training data: a folder with one sub-folder per class, "
                                                 "or a CSV/JSONL file with text and label columns")
    p.add_argument("--val", help="validation data, laid out like --data (default: measure on --data)")
    p.add_argument("--epochs", type=non_negative_int, default=3,
                   help="passes over the data, 0 or more (default: %(default)s)")
    p.add_argument("--strategy", default=None, choices=STRATEGY_NAMES,
                   help=f"what trains when (default: {DEFAULT_STRATEGY}, or what a recipe freezes)")
    p.add_argument("--lora-targets", type=_patterns, action="extend", metavar="PATTERNS",
                   help="with --strategy lora (which it implies): the Linear layers that get adapters, as module-name "
                        "wildcards separated by commas, e.g. 'encoder.*.query,encoder.*.value' (default: the card's "
                        "extra['lora_targets'])")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate, above 0 (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="samples per step and process, 1 or more")
    # the trainer's own names; the first of each is its default
    p.add_argument("--optimizer", default=OPTIMIZERS[0], choices=OPTIMIZERS, help="(default: %(default)s)")
    p.add_argument("--scheduler", default=SCHEDULERS[0], choices=SCHEDULERS, help="(default: %(default)s)")
    p.add_argument("--precision", default=PRECISIONS[0], choices=PRECISIONS,
                   help="(default: %(default)s: bf16 on GPUs that support it, else fp32; fp16 uses a gradient scaler)")
    _add_training_options(p)
    p.add_argument("--out", default="zoo-finetuned",
                   help="folder for the fine-tuned model (default: %(default)s): new or empty, or one zoo wrote "
                        "before with --resume or --overwrite; the run's checkpoints and its per-epoch history "
                        "(history.csv, history.json) go to OUT/checkpoints")
    p.add_argument("--resume", action="store_true", help="continue the run whose checkpoints are in OUT/checkpoints")
    p.add_argument("--log", action="append", choices=LOGGERS, default=[], metavar="LOGGER",
                   help=f"also log the run for {', '.join(LOGGERS)} (repeat for several), in OUT/checkpoints/logs; "
                        "each needs its package installed (W&B runs offline unless WANDB_MODE says otherwise)")
    p.add_argument("--overwrite", action="store_true",
                   help="use an --out that holds a model or other files: its contents are replaced by the new model")
    p.add_argument("--checkpoint-every", type=positive_int,
                   help="also checkpoint every N steps inside an epoch (N >= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=non_negative_int, default=0, help="data loading processes, 0 or more")
    p.add_argument("--threads", type=non_negative_int,
                   help="CPU threads for torch (default or 0: one per physical core, unless OMP_NUM_THREADS says "
                        "otherwise)")
    p.add_argument("--scratch", action="store_true",
                   help="start from random weights instead of pretrained ones (a recipe that freezes part of the "
                        "model then needs --strategy)")
    p.add_argument("--no-augment", action="store_true", help="no random crops or flips on the training data")
    add_table_arguments(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true",
                   help="print the run's summary as JSON at the end, alone on standard output (the progress lines "
                        "go to standard error)")
    p.set_defaults(func=cmd_finetune)


def _add_training_options(p: argparse.ArgumentParser) -> None:
    """Accumulation, warm-up, EMA, early stopping, the monitored metric, label smoothing and MixUp/CutMix."""
    group = p.add_argument_group("training options (Lightning's and the Hugging Face Trainer's names are in "
                                 "docs/trainer.md)")
    group.add_argument("--sharding", choices=("fsdp",),  # zoo.finetune.config.SHARDINGS, without importing torch
                       help="under torchrun: shard the model over the processes with torch's fully_shard (FSDP2) "
                            "instead of DDP, for models that do not fit one device (default: DDP)")
    group.add_argument("--accumulate-grad-batches", type=positive_int, default=1, metavar="N",
                       help="add up the gradients of N batches before each optimizer step (default: %(default)s)")
    warmup = group.add_mutually_exclusive_group()
    warmup.add_argument("--warmup-steps", type=non_negative_int, metavar="N",
                        help="raise the learning rate linearly over the first N optimizer steps")
    warmup.add_argument("--warmup-epochs", type=non_negative_float, metavar="E",
                        help="the same over the first E epochs (a fraction is allowed)")
    group.add_argument("--ema-decay", type=fraction, metavar="D",
                       help="keep an exponential moving average of the weights, e.g. 0.999")
    group.add_argument("--ema-eval", action="store_true",
                       help="with --ema-decay: measure and save the averaged weights (the published model is theirs)")
    group.add_argument("--early-stopping-patience", type=positive_int, metavar="N",
                       help="end the run after N epochs without improvement of the monitored metric")
    group.add_argument("--min-delta", type=non_negative_float, default=0.0, metavar="X",
                       help="with --early-stopping-patience: the smallest change that counts as an improvement")
    group.add_argument("--monitor", metavar="METRIC",
                       help="the epoch metric that chooses the saved model and drives early stopping, e.g. val_loss "
                            "(default: val_accuracy for classification)")
    group.add_argument("--monitor-mode", choices=MONITOR_MODES,
                       help="whether the monitored metric is better lower or higher (default: from its name)")
    group.add_argument("--label-smoothing", type=fraction, default=0.0, metavar="X",
                       help="cross-entropy label smoothing, from 0 up to 1 (default: %(default)s)")
    group.add_argument("--mixup-alpha", type=non_negative_float, default=0.0, metavar="A",
                       help="MixUp images with Beta(A, A) weights (0: off)")
    group.add_argument("--cutmix-alpha", type=non_negative_float, default=0.0, metavar="A",
                       help="CutMix images with Beta(A, A) box sizes (0: off)")
    group.add_argument("--metrics", type=_names, metavar="NAMES",
                       help="validation metrics, separated by commas: top5_accuracy (any k), macro_f1, per_class, "
                            "entity_f1, wer, cer, mse, mae, r2 (default: the model's task's)")


def training_options(args: argparse.Namespace) -> dict[str, Any]:
    """The trainer's options the command line sets besides data, model and output."""
    return {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size, "optimizer": args.optimizer,
            "scheduler": args.scheduler, "precision": args.precision, "checkpoint_every": args.checkpoint_every,
            "seed": args.seed, "num_workers": args.workers,
            "accumulate_grad_batches": args.accumulate_grad_batches, "warmup_steps": args.warmup_steps,
            "warmup_epochs": args.warmup_epochs, "ema_decay": args.ema_decay, "ema_eval": args.ema_eval,
            "early_stopping_patience": args.early_stopping_patience, "min_delta": args.min_delta,
            "monitor": args.monitor, "monitor_mode": args.monitor_mode, "label_smoothing": args.label_smoothing,
            "mixup_alpha": args.mixup_alpha, "cutmix_alpha": args.cutmix_alpha, "log": tuple(args.log),
            "metrics": getattr(args, "metrics", None), "sharding": getattr(args, "sharding", None)}


def cmd_finetune(args: argparse.Namespace) -> int:
    card = finetune_card(args.name)  # what is wrong with the model or the options fails before any work
    _check_options(args)
    strategy_name = _strategy_name(args, card)
    if args.scratch and strategy_name is None:
        check_scratch(card)
    classes = zdata.class_names(args.data, **table_columns(args))
    out = Path(args.out).expanduser()
    if not _first_process():  # torchrun: the first process owns --out and publishes
        return _finetune(args, classes, out, out / run_dir.RUN_FOLDER)
    with run_dir.claim(out, overwrite=args.overwrite, resume=args.resume) as run:
        return _finetune(args, classes, out, run)


def _check_options(args: argparse.Namespace) -> None:
    """Options that do not go together (--ema-eval without --ema-decay) fail before any folder is touched."""
    from ..finetune import TrainerConfig  # imports torch: only once the command runs

    TrainerConfig(**training_options(args))


def _names(text: str) -> list[str]:
    """An argument type: names separated by commas."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected metric names separated by commas, got {text!r}")
    return names


def _patterns(text: str) -> list[str]:
    """An argument type: module-name wildcards separated by commas."""
    patterns = [part.strip() for part in text.split(",") if part.strip()]
    if not patterns:
        raise argparse.ArgumentTypeError(f"expected module-name wildcards separated by commas, got {text!r}")
    return patterns


def _strategy_name(args: argparse.Namespace, card: ModelCard) -> str | None:
    """The strategy the options ask for (``--lora-targets`` implies lora); a LoRA run needs targets."""
    if args.lora_targets and args.strategy not in (None, "lora"):
        raise InvalidArgumentError(f"--lora-targets goes with --strategy lora, not --strategy {args.strategy}; "
                                   "drop one of them")
    name: str | None = "lora" if args.lora_targets else args.strategy
    if name == "lora" and not args.lora_targets and not card.extra.get("lora_targets"):
        raise InvalidArgumentError(
            f"model {card.name!r} names no LoRA targets (its card has no extra['lora_targets']): pass --lora-targets "
            f"with wildcards over the names of its Linear layers (print(zoo.create({args.name!r})) shows them), "
            "e.g. --lora-targets 'encoder.*.query,encoder.*.value', or choose another --strategy")
    return name


def _strategy(args: argparse.Namespace) -> str | Strategy | None:
    """What `Trainer` takes as its strategy: a name, or the LoRA strategy on the targets given."""
    from ..finetune import get_strategy  # imports torch: only once the command runs

    return get_strategy("lora", targets=args.lora_targets) if args.lora_targets else args.strategy


def _finetune(args: argparse.Namespace, classes: list[str], out: Path, run: Path) -> int:
    """Train on the data and publish the best model to `out` (`run` is the run folder inside it)."""
    import torch  # only once the command runs

    from ..finetune import Trainer  # imports torch: only once the command runs
    from ..speed import choose_threads  # reason: imports torch, only once the command runs

    choose_threads(args.threads)
    torch.manual_seed(args.seed)  # the new head's initial weights, so "accuracy before" repeats too
    strategy = _strategy(args)
    model = model_to_finetune(args.name, num_classes=len(classes), scratch=args.scratch,
                              strategy_given=strategy is not None)
    train, val = _datasets(args, model, classes)
    measured_on = "validation" if args.val else "training"
    trainer = Trainer(strategy=strategy, checkpoint_dir=run, resume=args.resume, labels=classes,
                      progress=not args.quiet, callbacks=[HistoryFiles(run)], **training_options(args))
    say = _printer()
    say(_speed_line(args, model, trainer))
    say(f"{len(train)} training and {len(val)} {measured_on} samples, {len(classes)} classes: "
        f"{', '.join(classes[:10])}{' ...' if len(classes) > 10 else ''}")
    before = None
    # Decided from the arguments alone, the same on every machine: the evaluation below reduces across processes,
    # and machines without a shared disk would disagree about whether last.pt exists.
    if not args.resume:
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


def _speed_line(args: argparse.Namespace, model: nn.Module, trainer: Trainer) -> str:
    """The threads, batch size, precision and memory format the run uses, in one line."""
    from ..speed import choose  # reason: imports torch, only once the command runs

    config = trainer.config
    return choose(model, threads=args.threads or None, batch_size=config.batch_size, precision=config.precision,
                  channels_last=config.channels_last, device=trainer.context.device).line()


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
    """The published model's accuracy (the best epoch's, whose confusion matrix the trainer printed), where it
    and the run's history are, and the run as JSON with ``--json``."""
    best = result.best
    after = best.get("val_accuracy")
    if after is not None:
        say(f"accuracy after fine-tuning:  {after:.1%} on the {measured_on} data (epoch {result.best_epoch})")
    say(f"saved to {out}; load it with zoo.create('local-dir:{out}') or: zoo predict {out} FILE ...")
    history = [out / run_dir.RUN_FOLDER / name for name in (HISTORY_CSV, HISTORY_JSON)]
    say(f"every epoch's metrics: {history[0]} and {history[1]}")
    report = out / run_dir.RUN_FOLDER / "report" / "report.html"
    if report.is_file():
        say(f"plots and report: {report} (rebuild with: zoo report {out})")
    if args.json:
        print_json({"before": before, "after": after, "best_epoch": result.best_epoch, "out": str(out),
                    "classes": classes, "confusion": best.get("val_confusion"),
                    "history": [_numbers(metrics) for metrics in result.history],
                    "history_files": [str(path) for path in history]})


def _numbers(metrics: dict[str, Any]) -> dict[str, Any]:
    """One epoch's metrics without its confusion matrices."""
    return {k: v for k, v in metrics.items() if not k.endswith("confusion")}


def _first_process() -> bool:
    """Whether this is the first (or only) process of the run: ``torchrun`` starts several and sets ``RANK``."""
    return os.environ.get("RANK", "0") == "0"


def _printer() -> Callable[[str], None]:
    """print on the first process only."""
    if _first_process():
        return lambda message: print(message, flush=True)
    return lambda message: None
