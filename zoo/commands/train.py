"""``zoo finetune``, ``zoo evaluate``, ``zoo predict`` and ``zoo demo``: training from the command line.

    zoo finetune resnet18 --data flowers/train --val flowers/val --epochs 3 --out flowers-model
    zoo evaluate flowers-model --data flowers/val
    zoo predict flowers-model rose.jpg tulip.jpg
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..cli import non_negative_int, positive_float, positive_int
from .output import print_json

STRATEGIES = ("freeze_unfreeze", "no_freeze", "freeze", "unfreeze_milestones", "lora")


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("finetune", help="fine-tune a model on a folder of images or audio clips, or a CSV/JSONL of texts",
                       description="Fine-tune NAME on your data and save the best model (by validation accuracy) "
                                   "to --out, in the format zoo.create('local-dir:OUT') and the Hub read.")
    p.add_argument("name", help="model, recipe, name.tag, local-dir:PATH or hf-hub:org/repo")
    p.add_argument("--data", required=True, help="training data: a folder with one sub-folder per class, "
                                                 "or a CSV/JSONL file with text and label columns")
    p.add_argument("--val", help="validation data, laid out like --data (default: measure on --data)")
    p.add_argument("--epochs", type=non_negative_int, default=3,
                   help="passes over the data, 0 or more (default: %(default)s)")
    p.add_argument("--strategy", default=None, choices=STRATEGIES, help="what trains when (default: freeze_unfreeze)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate, above 0 (default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="samples per step and process, 1 or more")
    p.add_argument("--optimizer", default="adamw", choices=("adamw", "adam", "sgd"))
    p.add_argument("--scheduler", default="cosine", choices=("cosine", "onecycle", "linear", "constant"))
    p.add_argument("--precision", default="auto", choices=("auto", "bf16", "fp32"))
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
    p.add_argument("--skip-bad", action="store_true", help="leave out unreadable files (with a warning)")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the run's summary as JSON at the end")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("evaluate", help="accuracy, loss and confusion matrix of a model on labelled data")
    p.add_argument("model", help="a saved model's directory, or a model name")
    p.add_argument("--data", required=True)
    p.add_argument("--batch-size", type=positive_int, default=64, help="1 or more")
    p.add_argument("--skip-bad", action="store_true")
    p.add_argument("--text-column", default="text")
    p.add_argument("--label-column", default="label")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify files (images, audio) or texts with a model")
    p.add_argument("model", help="a saved model's directory, or a model name")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image or audio files; for a text model, texts")
    p.add_argument("--top-k", type=positive_int, default=3, help="how many classes to show per input, 1 or more")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("demo", help="make the demo dataset and starting weights (offline, under a minute)")
    p.add_argument("--out", default="zoo-demo", help="folder to create (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="make everything again even if it exists")
    p.set_defaults(func=cmd_demo)


# ---------------------------------------------------------------------------- finetune


def cmd_finetune(args: argparse.Namespace) -> int:
    from .. import data as zdata
    from ..finetune import run_dir

    classes = zdata.class_names(args.data, text_column=args.text_column, label_column=args.label_column)
    out = Path(args.out).expanduser()
    if os.environ.get("RANK", "0") != "0":  # torchrun: the first process owns --out and publishes
        return _finetune(args, classes, out, out / run_dir.RUN_FOLDER)
    with run_dir.claim(out, overwrite=args.overwrite, resume=args.resume) as run:
        return _finetune(args, classes, out, run)


def _finetune(args: argparse.Namespace, classes: list[str], out: Path, run: Path) -> int:
    """Train on the data and publish the best model to `out` (`run` is the run folder inside it)."""
    from .. import data as zdata
    from ..finetune import run_dir
    from ..finetune.trainer import Trainer

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # the new head's initial weights, so "accuracy before" repeats too
    model = _create_for_training(args.name, num_classes=len(classes), scratch=args.scratch)
    columns = {"text_column": args.text_column, "label_column": args.label_column, "skip_bad": args.skip_bad}
    train = zdata.dataset_for(model, args.data, train=True, augment=not args.no_augment, classes=classes, **columns)
    val = zdata.dataset_for(model, args.val or args.data, classes=classes, **columns)
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
                         progress=False, verbose=False).evaluate(model, val)
        say(f"accuracy before fine-tuning: {before['accuracy']:.1%} on the {measured_on} data")
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
    best = result.history[result.best_epoch - 1]
    after = best.get("val_accuracy")
    if after is not None:
        say(f"accuracy after fine-tuning:  {after:.1%} on the {measured_on} data (epoch {result.best_epoch})")
    say(f"saved to {out}; load it with zoo.create('local-dir:{out}') or: zoo predict {out} FILE ...")
    if args.json:
        print_json({"before": before and before["accuracy"], "after": after, "best_epoch": result.best_epoch,
                    "out": str(out), "classes": classes,
                    "history": [{k: v for k, v in h.items() if not k.endswith("confusion")} for h in result.history]})
    return 0


def _printer():
    """print on the first process only (``torchrun`` starts several)."""
    main = os.environ.get("RANK", "0") == "0"
    return (lambda message: print(message, flush=True)) if main else (lambda message: None)


def _create_for_training(name: str, *, num_classes: int, scratch: bool):
    """The model to fine-tune: pretrained when it has weights (unless `scratch`), with a head of `num_classes`."""
    from .. import create, get_card
    from ..factory import SAVED_PREFIXES

    if name.startswith(SAVED_PREFIXES):
        return create(name, pretrained=not scratch, num_classes=num_classes)
    if os.path.isdir(name):
        return create(f"local-dir:{name}", pretrained=not scratch, num_classes=num_classes)
    card = get_card(name)
    pretrained = (card.has_weights or bool(card.recipe and card.recipe.options.get("pretrained"))) and not scratch
    return create(name, pretrained=pretrained, num_classes=num_classes)


# ---------------------------------------------------------------------------- evaluate and predict


def _load(model: str):
    from .. import create
    from ..factory import SAVED_PREFIXES

    if model.startswith(SAVED_PREFIXES):
        return create(model)
    if os.path.isdir(model):
        return create(f"local-dir:{model}")
    return create(model, pretrained=True)


def _labels(model: Any) -> list[str] | None:
    card = model.zoo_card
    labels = card.extra.get("labels")
    if labels:
        return list(labels)
    weights = card.weights.get(card.default_weights) if card.default_weights else None
    return list(weights.labels) if weights is not None and weights.labels else None


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .. import data as zdata
    from ..errors import DataError
    from ..finetune.metrics import format_confusion
    from ..finetune.trainer import evaluate

    model = _load(args.model)
    labels = _labels(model)
    found = zdata.class_names(args.data, text_column=args.text_column, label_column=args.label_column)
    if labels is not None:
        unknown = sorted(set(found) - set(labels))
        if unknown:
            raise DataError(f"{args.data} has classes the model does not predict: {unknown}; it knows {labels}")
    classes = labels or found
    dataset = zdata.dataset_for(model, args.data, classes=classes, skip_bad=args.skip_bad,
                                text_column=args.text_column, label_column=args.label_column)
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


def cmd_predict(args: argparse.Namespace) -> int:
    import torch

    model = _load(args.model)
    model.eval()
    labels = _labels(model)
    card = model.zoo_card
    batch, names = _prepare_inputs(model, card, args.inputs)
    with torch.inference_mode():
        output = model(**batch) if isinstance(batch, dict) else model(*batch)
        logits = output if isinstance(output, torch.Tensor) else output[0]
        probabilities = logits.float().softmax(dim=-1)
    k = min(args.top_k, probabilities.shape[-1])
    top = probabilities.topk(k, dim=-1)
    rows = []
    for name, scores, indices in zip(names, top.values.tolist(), top.indices.tolist()):
        rows.append({"input": name, "predictions": [
            {"label": labels[i] if labels and i < len(labels) else str(i), "probability": round(s, 4)}
            for s, i in zip(scores, indices)]})
    if args.json:
        print_json(rows)
        return 0
    for row in rows:
        shown = ", ".join(f"{p['label']} {p['probability']:.1%}" for p in row["predictions"])
        print(f"{row['input']}: {shown}")
    return 0


def _prepare_inputs(model: Any, card: Any, inputs: list[str]) -> tuple[Any, list[str]]:
    import torch

    from ..errors import DataError

    if card.modality == "text":
        from ..data.text import tokenizer_for

        return tokenizer_for(model).encode_batch(inputs), inputs
    missing = [path for path in inputs if not os.path.isfile(path)]
    if missing:
        raise DataError(f"no such file: {', '.join(missing)}")
    if card.modality == "image":
        from PIL import Image

        from ..data.images import image_transform, to_rgb

        transform = image_transform(model)
        tensors = []
        for path in inputs:
            try:
                with Image.open(path) as image:
                    tensors.append(transform(to_rgb(image)))  # as the training data was converted
            except OSError as exc:
                raise DataError(f"cannot read image {path}: {exc}") from exc
        return (torch.stack(tensors),), inputs
    from ..data.audio import collate_audio, load_audio

    clips = [load_audio(path, card.input_for()) for path in inputs]
    batch = collate_audio(clips)
    return (batch.waveforms, batch.lengths), inputs


# ---------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    from ..demo import make_demo

    paths = make_demo(Path(args.out).expanduser(), force=args.force)
    print(f"demo data:        {paths.train} and {paths.val}")
    print(f"starting weights: {paths.weights}")
    print("now fine-tune:")
    print(f"  {paths.finetune_command()}")
    return 0
