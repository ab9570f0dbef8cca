"""``zoo evaluate``: accuracy, loss and confusion matrix of a model on labelled data.

    zoo evaluate flowers-model --data flowers/val
"""
from __future__ import annotations

import argparse

from .. import data as zdata
from ..errors import DataError
from .loading import load_model, model_labels
from .options import Subcommands, add_table_arguments, positive_int, table_columns
from .output import print_json


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("evaluate", help="accuracy, loss and confusion matrix of a model on labelled data")
    p.add_argument("model", help="a saved model's directory, or a model name")
    p.add_argument("--data", required=True)
    p.add_argument("--batch-size", type=positive_int, default=64, help="1 or more")
    add_table_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..finetune import evaluate  # imports torch: only once the command runs
    from ..finetune.metrics import format_confusion

    model = load_model(args.model)
    classes = _classes(args, model_labels(model))
    dataset = zdata.dataset_for(model, args.data, classes=classes, skip_bad=args.skip_bad, **table_columns(args))
    metrics = evaluate(model, dataset, batch_size=args.batch_size, progress=False, verbose=False)
    if args.json:
        print_json({"accuracy": metrics.get("accuracy"), "loss": metrics["loss"], "samples": metrics["samples"],
                    "classes": classes, "confusion": metrics.get("confusion")})
        return 0
    print(f"samples:  {metrics['samples']}")
    print(f"loss:     {metrics['loss']:.4f}")
    if "accuracy" in metrics:
        print(f"accuracy: {metrics['accuracy']:.1%}")
        print("confusion matrix (rows: true class):")
        print(format_confusion(metrics["confusion"], classes))
    return 0


def _classes(args: argparse.Namespace, labels: list[str] | None) -> list[str]:
    """The classes in index order: the model's, which must cover every class of the data, else the data's."""
    found = zdata.class_names(args.data, **table_columns(args))
    if labels is None:
        return found
    unknown = sorted(set(found) - set(labels))
    if unknown:
        raise DataError(f"{args.data} has classes the model does not predict: {unknown}; it knows {labels}")
    return labels
