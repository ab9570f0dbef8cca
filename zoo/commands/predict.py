"""``zoo predict``: classify image or audio files, or texts, with a model.

    zoo predict flowers-model rose.jpg tulip.jpg
"""
from __future__ import annotations

import argparse
from typing import Any

from .loading import load_model, model_labels
from .options import Subcommands, positive_int
from .output import print_json


def add_commands(sub: Subcommands) -> None:
    p = sub.add_parser("predict", help="classify files (images, audio) or texts with a model")
    p.add_argument("model", help="a saved model's directory, or a model name")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or audio files; for a text model, texts")
    p.add_argument("--top-k", type=positive_int, default=3, help="how many classes to show per input, 1 or more")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)


def cmd_predict(args: argparse.Namespace) -> int:
    import torch  # only once the command runs

    from .inputs import model_inputs  # imports torch and Pillow: only once the command runs

    model = load_model(args.model)
    model.eval()
    labels = model_labels(model)
    batch = model_inputs(model, args.inputs)
    with torch.inference_mode():
        output = model(**batch) if isinstance(batch, dict) else model(*batch)
        logits = output if isinstance(output, torch.Tensor) else output[0]
        probabilities = logits.float().softmax(dim=-1)
    top = probabilities.topk(min(args.top_k, probabilities.shape[-1]), dim=-1)
    rows = [{"input": name, "predictions": _predictions(scores, indices, labels)}
            for name, scores, indices in zip(args.inputs, top.values.tolist(), top.indices.tolist())]
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        shown = ", ".join(f"{p['label']} {p['probability']:.1%}" for p in row["predictions"])
        print(f"{row['input']}: {shown}")
    return 0


def _predictions(scores: list[float], indices: list[int], labels: list[str] | None) -> list[dict[str, Any]]:
    """The top classes of one input, best first: the class name (its index when unnamed) and its probability."""
    return [{"label": labels[i] if labels and i < len(labels) else str(i), "probability": round(s, 4)}
            for s, i in zip(scores, indices)]
