"""``zoo predict``: classify image or audio files (or folders of them), or texts (or files of texts), with a model.

    zoo predict flowers-model rose.jpg tulips/
    zoo predict reviews-model "great film" reviews.csv --json
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from .loading import load_model
from .options import Subcommands, add_text_column_argument, positive_int
from .output import print_json
from .speed_options import add_speed_arguments

if TYPE_CHECKING:
    from .inputs import Item

_SHOWN_TEXT = 40  # characters of a text read from a file that the human output repeats


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("predict", help="classify files or folders (images, audio) or texts with a model",
                       description="Classify each INPUT with MODEL and print its top classes with their "
                                   "probabilities.")
    p.add_argument("model", help="a saved model's directory, or a model name")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image or audio files, or folders (their files with the model's extensions, at any depth, "
                        "sorted); for a text model, texts, or .txt (one text per line), CSV or JSONL files of texts")
    p.add_argument("--top-k", type=positive_int, default=3, help="how many classes to show per input, 1 or more")
    p.add_argument("--batch-size", type=positive_int,
                   help="inputs per forward pass, 1 or more (default: for the device: 64 on a CPU, 128 on a GPU)")
    add_speed_arguments(p)
    add_text_column_argument(p)
    p.add_argument("--json", action="store_true",
                   help="print only JSON: a list with one {input, predictions} object per input ('source' too for "
                        "a text read from a file)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from ..pipelines import FEATURE_EXTRACTION, TOKEN_CLASSIFICATION, Pipeline  # reason: torch, only when run
    from .inputs import predict_items  # reason: imports torch (through zoo.pipelines), only once the command runs

    model = load_model(args.model)
    runner = Pipeline(model, batch_size=args.batch_size, top_k=args.top_k, precision=args.precision,
                      threads=args.threads)
    if runner.task in (FEATURE_EXTRACTION, TOKEN_CLASSIFICATION):
        raise InvalidArgumentError(f"{args.model} is a {runner.task} model: it gives embeddings or one label per "
                                   "token, not classes per input; use zoo.pipeline in Python to get them")
    items = predict_items(model, args.inputs, text_column=args.text_column)
    if not args.json:  # --json prints the JSON document alone; an input error stays the only line
        print(runner.speed.line(), file=sys.stderr)
    results = runner([item.value for item in items])
    rows = [_row(item, result) for item, result in zip(items, results)]
    if args.json:
        print_json(rows)
        return 0
    for item, row in zip(items, rows):
        if "text" in row:
            shown = row["text"]
        else:
            shown = ", ".join(f"{p['label']} {p['probability']:.1%}" for p in row["predictions"])
        print(f"{_name(item)}: {shown}")
    return 0


def _row(item: Item, result: Any) -> dict[str, Any]:
    """An input's JSON row: its top classes (``predictions``) or, from a speech recognizer, its ``text``."""
    row: dict[str, Any] = {"input": item.value}
    if isinstance(result, dict):
        row["text"] = result["text"]
    else:
        row["predictions"] = [{"label": p["label"], "probability": round(p["score"], 4)} for p in result]
    if item.source is not None:
        row["source"] = item.source
    return row


def _name(item: Item) -> str:
    """How the human output names an item: a file's path or a text; a text from a file by its place and start."""
    if item.source is None:
        return item.value
    text = item.value if len(item.value) <= _SHOWN_TEXT else item.value[:_SHOWN_TEXT - 3] + "..."
    return f"{item.source} {text!r}"
