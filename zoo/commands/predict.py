"""``zoo predict``: classify image or audio files (or folders of them), or texts (or files of texts), with a model.

    zoo predict flowers-model rose.jpg tulips/
    zoo predict reviews-model "great film" reviews.csv --json
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .loading import load_model, model_labels
from .options import Subcommands, add_text_column_argument, positive_int
from .output import print_json

if TYPE_CHECKING:
    from torch import nn

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
    p.add_argument("--batch-size", type=positive_int, default=32, help="inputs per forward pass, 1 or more")
    add_text_column_argument(p)
    p.add_argument("--json", action="store_true",
                   help="print only JSON: a list with one {input, predictions} object per input ('source' too for "
                        "a text read from a file)")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    from .inputs import predict_items  # imports torch and Pillow: only once the command runs

    model = load_model(args.model)
    model.eval()
    items = predict_items(model, args.inputs, text_column=args.text_column)
    labels = model_labels(model)
    rows = []
    for start in range(0, len(items), args.batch_size):
        batch = items[start:start + args.batch_size]
        rows += [_row(item, predictions) for item, predictions in zip(batch, _top(model, batch, args.top_k, labels))]
    if args.json:
        print_json(rows)
        return 0
    for item, row in zip(items, rows):
        shown = ", ".join(f"{p['label']} {p['probability']:.1%}" for p in row["predictions"])
        print(f"{_name(item)}: {shown}")
    return 0


def _top(model: nn.Module, items: Sequence[Item], k: int, labels: list[str] | None) -> list[list[dict[str, Any]]]:
    """The top `k` classes of each item, best first."""
    import torch  # only once the command runs

    from .inputs import model_inputs

    batch = model_inputs(model, [item.value for item in items])
    with torch.inference_mode():
        output = model(**batch) if isinstance(batch, dict) else model(*batch)
        logits = output if isinstance(output, torch.Tensor) else output[0]
        probabilities = logits.float().softmax(dim=-1)
    top = probabilities.topk(min(k, probabilities.shape[-1]), dim=-1)
    return [_predictions(scores, indices, labels) for scores, indices in zip(top.values.tolist(), top.indices.tolist())]


def _row(item: Item, predictions: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"input": item.value, "predictions": predictions}
    if item.source is not None:
        row["source"] = item.source
    return row


def _name(item: Item) -> str:
    """How the human output names an item: a file's path or a text; a text from a file by its place and start."""
    if item.source is None:
        return item.value
    text = item.value if len(item.value) <= _SHOWN_TEXT else item.value[:_SHOWN_TEXT - 3] + "..."
    return f"{item.source} {text!r}"


def _predictions(scores: list[float], indices: list[int], labels: list[str] | None) -> list[dict[str, Any]]:
    """The top classes of one input, best first: the class name (its index when unnamed) and its probability."""
    return [{"label": labels[i] if labels and i < len(labels) else str(i), "probability": round(s, 4)}
            for s, i in zip(scores, indices)]
