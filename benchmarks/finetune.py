"""Fine-tune speed: a linear probe on cached features against a naive frozen-backbone loop,
and the per-step cost of frozen / last-stage-only / full fine-tuning.

    python benchmarks/finetune.py [--model resnet18] [--size 64] [--train 384] [--epochs 10] [--device cpu]

One run; every number is measured here, on synthetic images made by the script (random
class prototypes plus noise) and a randomly initialised model (no download).

Part 1, linear probe over `--epochs` epochs on the same data, same head initialisation,
same optimizer and batch order:
  naive  every epoch runs the frozen backbone over every image, then trains the head;
  cached the backbone runs once (`zoo.finetune.feature_cache.cached_features`, under
         inference mode) and the head trains on the stored features. "cold" is a first
         run (features computed and written to disk), "warm" a later run that reads them.
         Beside the cold run: its bound, 0.8 x epochs (the speed-up if the caching pass cost what
         one naive epoch's backbone pass costs), and measured / bound. The caching pass runs in
         inference mode with joined batches (up to 4x --batch), channels_last for conv models on
         CUDA and bf16 where the device runs it natively (`zoo.speed`).
Part 2, one training step (forward, backward, optimizer step) with the backbone frozen,
with only the last layer group before the head trainable, and with everything trainable.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time

import torch
from torch import nn

import zoo
from zoo.finetune import freeze, param_groups, unfreeze
from zoo.finetune.feature_cache import cached_features
from zoo.finetune.groups import group_prefixes

BOUND_PER_EPOCH = 0.8  # the cold run's bound is this times the epoch count


def build_model(name: str, num_classes: int, size: int) -> nn.Module:
    """A registered model (random init); its card's input size set to the benchmark's size."""
    model = zoo.create(name, num_classes=num_classes)
    card = model.zoo_card
    if card.input is not None and hasattr(card.input, "size"):
        zoo.factory.attach_card(model, dataclasses.replace(card, input=dataclasses.replace(card.input, size=size)))
    return model


def synthetic_images(n: int, classes: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of `classes` smooth random prototypes plus per-image noise and brightness jitter."""
    g = torch.Generator().manual_seed(1234)  # the same prototypes for train and validation
    prototypes = nn.functional.interpolate(torch.randn(classes, 3, 8, 8, generator=g), size=size, mode="bilinear")
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (n,), generator=g)
    noise = torch.randn(n, 3, size, size, generator=g)
    jitter = 0.5 * torch.randn(n, 1, 1, 1, generator=g)
    return prototypes[labels] + 1.5 * noise + jitter, labels


def batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, order: torch.Tensor | None = None):
    order = torch.arange(len(x)) if order is None else order
    for i in range(0, len(x), batch_size):
        idx = order[i:i + batch_size]
        yield x[idx], y[idx]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_head_epochs(forward, head_params, x, y, epochs, batch_size, lr, seed, device):
    """The shared training loop: `forward(batch_inputs)` gives logits; only the head's parameters train."""
    opt = torch.optim.SGD(head_params, lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=g)
        for xb, yb in batches(x, y, batch_size, order):
            loss = nn.functional.cross_entropy(forward(xb.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    return 100.0 * (logits.argmax(dim=1).cpu() == y).float().mean().item()


def naive_probe(model, data, args, device):
    (xt, yt), (xv, yv) = data
    freeze(model, "backbone")  # frozen BatchNorm: same features in train and eval mode
    model.train()
    head = [p for p in model.parameters() if p.requires_grad]
    sync(device)
    start = time.perf_counter()
    train_head_epochs(model, head, xt, yt, args.epochs, args.batch, args.lr, 0, device)
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(xb.to(device)) for xb, _ in batches(xv, yv, args.batch)])
    sync(device)
    return time.perf_counter() - start, accuracy(logits, yv)


def cached_probe(model, data, args, device, cache_dir):
    (xt, yt), (xv, yv) = data
    freeze(model, "backbone")
    path, head_module = zoo.finetune.get_head(model)
    sync(device)
    start = time.perf_counter()
    train = cached_features(model, batches(xt, yt, args.batch), data=("train", xt), preprocessing="synthetic",
                            cache_dir=cache_dir, device=device)
    val = cached_features(model, batches(xv, yv, args.batch), data=("val", xv), preprocessing="synthetic",
                          cache_dir=cache_dir, device=device)
    head_module.train()
    train_head_epochs(head_module, list(head_module.parameters()), train.features, train.labels, args.epochs,
                      args.batch, args.lr, 0, device)
    head_module.eval()
    with torch.no_grad():
        logits = head_module(val.features.to(device))
    sync(device)
    return time.perf_counter() - start, accuracy(logits, yv), train.hit and val.hit


def step_times(base, specs, args, device, steps: int) -> list[float]:
    """Median seconds of one forward+backward+optimizer step for each freeze spec (None: nothing frozen).

    The configurations take turns step by step, so a busy machine slows them alike.
    """
    x, y = synthetic_images(args.batch, args.classes, args.size, seed=7)
    x, y = x.to(device), y.to(device)
    runs = []
    for spec in specs:
        model = copy.deepcopy(base)
        if spec is None:
            unfreeze(model)
        else:
            freeze(model, spec)
        model.train()
        runs.append((model, torch.optim.SGD(param_groups(model, 0.01), lr=0.01, momentum=0.9)))
    times: list[list[float]] = [[] for _ in specs]
    for i in range(steps + 2):
        for k, (model, opt) in enumerate(runs):
            sync(device)
            start = time.perf_counter()
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sync(device)
            if i >= 2:  # two warm-up rounds
                times[k].append(time.perf_counter() - start)
    return [sorted(t)[len(t) // 2] for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--train", type=int, default=384)
    parser.add_argument("--val", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    base = build_model(args.model, args.classes, args.size).to(device)
    # Give BatchNorm statistics a look at the data, as pretrained weights would have.
    base.train()
    with torch.no_grad():
        for xb, _ in batches(*synthetic_images(256, args.classes, args.size, seed=99), args.batch):
            base(xb.to(device))
    data = (synthetic_images(args.train, args.classes, args.size, seed=1),
            synthetic_images(args.val, args.classes, args.size, seed=2))
    print(f"model {args.model} ({sum(p.numel() for p in base.parameters()) / 1e6:.1f}M parameters, random init), "
          f"{args.size}x{args.size} images, {args.train} train / {args.val} val, {args.classes} classes, "
          f"batch {args.batch}, device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads")

    print(f"\n1. linear probe, {args.epochs} epochs (time includes the final validation pass)")
    naive_s, naive_acc = naive_probe(copy.deepcopy(base), data, args, device)
    with tempfile.TemporaryDirectory() as cache_dir:
        cold_s, cold_acc, cold_hit = cached_probe(copy.deepcopy(base), data, args, device, cache_dir)
        warm_s, warm_acc, warm_hit = cached_probe(copy.deepcopy(base), data, args, device, cache_dir)
    assert not cold_hit and warm_hit, "the cache did not behave: first run must compute, second must read"
    print(f"   {'run':<44}{'seconds':>9}{'val acc %':>11}{'speed-up':>10}")
    print(f"   {'naive loop (backbone every epoch)':<44}{naive_s:>9.2f}{naive_acc:>11.1f}{1.0:>9.1f}x")
    print(f"   {'feature cache, cold (computes + writes)':<44}{cold_s:>9.2f}{cold_acc:>11.1f}{naive_s / cold_s:>9.1f}x")
    print(f"   {'feature cache, warm (reads from disk)':<44}{warm_s:>9.2f}{warm_acc:>11.1f}{naive_s / warm_s:>9.1f}x")
    bound = BOUND_PER_EPOCH * args.epochs
    print(f"   cold run: {naive_s / cold_s:.2f}x measured, bound {bound:.1f}x ({BOUND_PER_EPOCH} x {args.epochs} "
          f"epochs: caching costing one naive epoch's backbone pass), measured / bound {naive_s / cold_s / bound:.2f}")
    print(f"   accuracy difference (cache - naive): {cold_acc - naive_acc:+.1f} points cold, "
          f"{warm_acc - naive_acc:+.1f} points warm")

    prefixes = group_prefixes(base)
    head = base.zoo_card.head
    backbone = [p for p in prefixes if p != head]
    print(f"\n2. one training step, batch {args.batch} (median of {args.steps}, configurations interleaved)")
    configs = [("full fine-tuning (all trainable)", None), ("frozen backbone (head only)", "backbone"),
               (f"last stage only ({backbone[-1]} + {head})", backbone[:-1])]
    seconds = step_times(base, [spec for _, spec in configs], args, device, args.steps)
    full = seconds[0]
    rows = [(label, t) for (label, _), t in zip(configs, seconds)]
    print(f"   {'configuration':<44}{'ms/step':>9}{'vs full':>10}")
    for label, seconds in rows:
        print(f"   {label:<44}{seconds * 1e3:>9.1f}{full / seconds:>9.2f}x")


if __name__ == "__main__":
    main()
