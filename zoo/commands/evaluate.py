"""``zoo evaluate``: accuracy, loss and confusion matrix of a model on labelled data.

    zoo evaluate flowers-model --data flowers/val
"""
from __future__ import annotations

import argparse
import sys

from .. import data as zdata
from ..errors import DataError
from .loading import load_model, model_labels
from .options import Subcommands, add_table_arguments, positive_int, table_columns
from .output import print_json
from .speed_options import add_speed_arguments


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("evaluate", help="accuracy, loss and confusion matrix of a model on labelled data")
    p.add_argument("model", help="a saved model's directory, or a model name")
    p.add_argument("--data", required=True)
    p.add_argument("--batch-size", type=positive_int,
                   help="1 or more (default: chosen for the device: 64 on a CPU, 128 on a GPU)")
    add_speed_arguments(p)
    p.add_argument("--metrics", type=_names, metavar="NAMES",
                   help="metrics besides loss and accuracy, separated by commas: top5_accuracy (any k), macro_f1, "
                        "per_class, entity_f1, wer, cer, mse, mae, r2 (default: the model's task's)")
    add_table_arguments(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..finetune import evaluate  # imports torch: only once the command runs
    from ..finetune.metrics import format_confusion
    from ..speed import choose, default_device  # reason: imports torch, only once the command runs

    model = load_model(args.model)
    speed = choose(model, threads=args.threads, batch_size=args.batch_size, precision=args.precision,
                   device=default_device())
    classes = _classes(args, model_labels(model))
    dataset = zdata.dataset_for(model, args.data, classes=classes, skip_bad=args.skip_bad, **table_columns(args))
    if not args.json:  # --json prints the JSON document alone; a data error stays the only line
        print(speed.line(), file=sys.stderr)
    metrics = evaluate(model, dataset, batch_size=speed.batch_size, precision=speed.precision,
                       channels_last=speed.channels_last, progress=False, verbose=False, labels=classes,
                       metrics=args.metrics, num_workers=_workers(model, dataset))
    if args.json:
        print_json({"accuracy": metrics.get("accuracy"), "loss": metrics["loss"], "samples": metrics["samples"],
                    "classes": classes, "confusion": metrics.get("confusion"),
                    **{k: v for k, v in metrics.items() if k not in ("accuracy", "loss", "samples", "confusion")}})
        return 0
    print(f"samples:  {metrics['samples']}")
    print(f"loss:     {metrics['loss']:.4f}")
    if "accuracy" in metrics:
        print(f"accuracy: {metrics['accuracy']:.1%}")
    for key, value in metrics.items():
        if isinstance(value, float) and key not in ("loss", "accuracy"):
            print(f"{key + ':':<9} {value:.4f}")
    if "per_class" in metrics:
        print(format_per_class(metrics["per_class"], classes))
    if "accuracy" in metrics:
        print("confusion matrix (rows: true class):")
        print(format_confusion(metrics["confusion"], classes))
    return 0


def _workers(model: object, dataset: object) -> int:
    """Worker processes reading the files: `zoo.data.fast_images.loader_workers` for image folders, else none."""
    if zdata.modality_of(model) != "image":
        return 0
    from ..data.fast_images import loader_workers  # reason: imports torch, only once the command runs

    return loader_workers(len(dataset))  # type: ignore[arg-type]  # the image reader has a length


def _names(text: str) -> list[str]:
    """An argument type: names separated by commas."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected metric names separated by commas, got {text!r}")
    return names


def format_per_class(per_class: dict[str, list[float]], classes: list[str]) -> str:
    """Precision, recall, F1 and support of each class as aligned text."""
    width = max([len(c) for c in classes] + [5])
    lines = [f"{'class':<{width}}  precision  recall      f1  support"]
    for i, name in enumerate(classes):
        lines.append(f"{name:<{width}}  {per_class['precision'][i]:9.4f}  {per_class['recall'][i]:6.4f}  "
                     f"{per_class['f1'][i]:6.4f}  {per_class['support'][i]:7d}")
    return "\n".join(lines)


def _classes(args: argparse.Namespace, labels: list[str] | None) -> list[str]:
    """The classes in index order: the model's, which must cover every class of the data, else the data's."""
    found = zdata.class_names(args.data, **table_columns(args))
    if labels is None:
        return found
    unknown = sorted(set(found) - set(labels))
    if unknown:
        raise DataError(f"{args.data} has classes the model does not predict: {unknown}; it knows {labels}")
    return labels
