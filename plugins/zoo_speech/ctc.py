"""Greedy CTC decoding, and where a recognizer's output symbols come from."""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from zoo import ZooError
from zoo.factory import attach_card

WORD_SEPARATOR = "|"


def greedy_decode(logits: Tensor, frames: Tensor | None, labels: Sequence[str], *, blank: int = 0) -> list[str]:
    """Best path decoding: argmax per frame, merge repeats, drop blanks, map to text.

    ``"|"`` becomes a space; special tokens written ``<...>`` (``<pad>``, ``<unk>``) are dropped.
    """
    if logits.shape[-1] != len(labels):
        raise ZooError(f"the CTC head has {logits.shape[-1]} outputs but {len(labels)} labels were given")
    best = logits.argmax(dim=-1).cpu()
    texts = []
    for i, path in enumerate(best):
        if frames is not None:
            path = path[: int(frames[i])]
        tokens = torch.unique_consecutive(path).tolist()
        chars = [labels[t] for t in tokens if t != blank]
        text = "".join(" " if c == WORD_SEPARATOR else c for c in chars if not _special(c))
        texts.append(" ".join(text.split()))
    return texts


def _special(symbol: str) -> bool:
    return len(symbol) > 2 and symbol.startswith("<") and symbol.endswith(">")


def read_vocab(directory: str | os.PathLike) -> tuple[str, ...]:
    """Output symbols in index order from a Hugging Face ``vocab.json`` (``{symbol: index}``)."""
    path = Path(directory) / "vocab.json"
    vocab = json.loads(path.read_text(encoding="utf-8"))
    if vocab and all(isinstance(v, dict) for v in vocab.values()):  # multilingual: {lang: {symbol: index}}
        raise ZooError(f"{path} holds vocabularies for several languages; give labels=... to zoo.create")
    ordered = sorted(vocab.items(), key=lambda kv: kv[1])
    if [i for _, i in ordered] != list(range(len(ordered))):
        raise ZooError(f"{path} does not number its symbols 0..{len(ordered) - 1}")
    return tuple(symbol for symbol, _ in ordered)


def labels_for(model: nn.Module) -> tuple[str, ...]:
    """A recognizer's labels: its own, else its weights card's, else ``vocab.json`` beside its weights."""
    if getattr(model, "labels", None):
        return tuple(model.labels)
    card = getattr(model, "zoo_card", None)
    if card is not None:
        tag = card.default_weights
        if tag and tag in card.weights and card.weights[tag].labels:
            return card.weights[tag].labels
        location = card.extra.get("weights_location")
        if location:
            folder = Path(location)
            folder = folder if folder.is_dir() else folder.parent
            if (folder / "vocab.json").is_file():
                model.labels = read_vocab(folder)
                # remember them on the card too, so save_pretrained writes them into config.json
                attach_card(model, dataclasses.replace(card, defaults={**card.defaults, "labels": list(model.labels)}))
                return model.labels
    raise ZooError("this recognizer does not know its output symbols: create it with labels=[...] "
                   "(blank first), or load weights that come with a vocab.json")
