"""The Lightning path's overhead against zoo's `fit` on the same run, printed with both accuracies.

Both train the demo's starting weights (ShuffleNetV2 x0.5, `zoo.demo`) on the demo's shapes made
in memory, with the same options: AdamW, cosine schedule, batch size, epochs, strategy, fp32 on the
CPU. zoo's side is `zoo.finetune.fit` (feature cache off, so both run the backbone every step);
Lightning's is `zoo.lightning.ZooModule` with `ZooFinetuning` in a ``lightning.Trainer`` (no logger,
no checkpointing, no progress bar: what fit does not do either). Repetitions alternate between the
two and the median is reported, so a busy machine slows both alike.

    python benchmarks/lightning.py [--per-class 60] [--epochs 2] [--strategy freeze_unfreeze] [--repeats 3]
                                   [--threads 1]
"""
from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader, TensorDataset

import zoo
from zoo import demo
from zoo.cards import ImageInput
from zoo.finetune import fit


def demo_tensors(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The demo's fine-tune shapes at the network's input size, normalised as its card says."""
    spec = ImageInput(size=demo.INPUT_SIZE, resize_size=demo.IMAGE_SIZE)
    mean, std = torch.tensor(spec.mean).view(1, 3, 1, 1), torch.tensor(spec.std).view(1, 3, 1, 1)
    x, y = demo.shapes_tensors(demo.FINETUNE_CLASSES, per_class=per_class, seed=seed, size=demo.INPUT_SIZE)
    return (x.float() / 255 - mean) / std, y


def starting_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return zoo.create(f"local-dir:{demo.SHIPPED_WEIGHTS}", num_classes=len(demo.FINETUNE_CLASSES))


def run_fit(train, val, args) -> tuple[float, float]:
    model = starting_model()
    started = time.perf_counter()
    result = fit(model, train, val, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                 strategy=args.strategy, feature_cache=False, progress=False, verbose=False, report=False)
    return time.perf_counter() - started, result.history[-1]["val_accuracy"]


def run_lightning(train, val, args) -> tuple[float, float]:
    import lightning as L

    for name in ("lightning.pytorch", "lightning.fabric"):  # its notes on devices and tips at every fit
        logging.getLogger(name).setLevel(logging.ERROR)  # (set after the import, which sets them to INFO)

    from zoo.lightning import ZooFinetuning, ZooModule

    module = ZooModule(starting_model(), lr=args.lr)
    trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        num_sanity_val_steps=0, callbacks=[ZooFinetuning(args.strategy)])
    train_loader = DataLoader(TensorDataset(*train), batch_size=args.batch_size, shuffle=True,
                              generator=torch.Generator().manual_seed(0))
    val_loader = DataLoader(TensorDataset(*val), batch_size=args.batch_size)
    started = time.perf_counter()
    trainer.fit(module, train_loader, val_loader)
    return time.perf_counter() - started, module.history[-1]["val_accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--val-per-class", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--strategy", default="freeze_unfreeze")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: on a shared machine more threads wait on each other)")
    args = parser.parse_args()
    # run as a script, this file's folder comes first on the path, and its name would hide the lightning package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="lightning")
    train, val = demo_tensors(args.per_class, seed=1), demo_tensors(args.val_per_class, seed=2)
    times: dict[str, list[float]] = {"fit": [], "lightning": []}
    accuracy: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, run in (("fit", run_fit), ("lightning", run_lightning)):
            seconds, accuracy[name] = run(train, val, args)
            times[name].append(seconds)
            print(f"  {name}: {seconds:.2f} s", flush=True)
    fit_s, lightning_s = statistics.median(times["fit"]), statistics.median(times["lightning"])
    print(f"same run ({len(train[1])} images, {args.epochs} epochs, {args.strategy}, {torch.get_num_threads()} "
          f"threads), median of {args.repeats}:")
    print(f"  zoo fit:   {fit_s:7.2f} s   val_accuracy {accuracy['fit']:.3f}")
    print(f"  lightning: {lightning_s:7.2f} s   val_accuracy {accuracy['lightning']:.3f}")
    print(f"  Lightning path overhead vs zoo's fit: {lightning_s / fit_s:.3f}x")


if __name__ == "__main__":
    main()
