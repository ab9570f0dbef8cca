"""Multi-scale feature maps: what ``zoo.create(name, features_only=True, out_indices=...)`` returns.

The stages are card data (`zoo.cards.FeatureStage`); `feature_indices` checks `out_indices` against
them without torch. `FeaturesModel` wraps a built model: forward hooks on the stage modules record
their outputs, and the forward pass stops after the last stage asked for, so the head never runs.
`FeatureInfo` has timm's names and semantics (``channels()``, ``reduction()``, ``module_name()``,
and per stage a dict with ``num_chs``, ``reduction``, ``module``).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from .cards import FeatureStage, ModelCard, attach_card
from .errors import InvalidArgumentError


def feature_indices(card: ModelCard, out_indices: Any = None) -> tuple[int, ...]:
    """`out_indices` as non-negative stage indices of `card` (all stages when None); negative ones count from
    the end. An index out of range, a repeated one or a card without stages is an error naming what is valid."""
    count = len(card.feature_stages)
    if not count:
        raise InvalidArgumentError(f"model {card.name!r} declares no feature stages (card field feature_stages), "
                                   "so features_only=True cannot build it")
    if out_indices is None:
        return tuple(range(count))
    if isinstance(out_indices, bool) or not isinstance(out_indices, (list, tuple)) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in out_indices) or not out_indices:
        raise InvalidArgumentError(f"out_indices must be a non-empty list or tuple of stage indices, got "
                                   f"{out_indices!r}")
    valid = f"model {card.name!r} has {count} feature stages: indices 0 to {count - 1} (or -{count} to -1)"
    bad = [i for i in out_indices if not -count <= i < count]
    if bad:
        raise InvalidArgumentError(f"out_indices {list(out_indices)}: {bad} out of range; {valid}: {_listing(card)}")
    indices = tuple(i % count for i in out_indices)
    if len(set(indices)) != len(indices):
        raise InvalidArgumentError(f"out_indices {list(out_indices)} names a stage more than once; {valid}")
    return indices


def _listing(card: ModelCard) -> str:
    return ", ".join(f"{i}: {s.module} ({s.channels} ch, /{s.reduction})" for i, s in enumerate(card.feature_stages))


class FeatureInfo:
    """timm's ``feature_info``: every stage's dict (``num_chs``, ``reduction``, ``module``, ``index``), and
    methods giving a key for the stages in `out_indices` (or for one index of all stages)."""

    def __init__(self, stages: Sequence[FeatureStage], out_indices: Sequence[int]):
        self.info = [{"num_chs": s.channels, "reduction": s.reduction, "module": s.module, "index": i}
                     for i, s in enumerate(stages)]
        self.out_indices = tuple(out_indices)

    def get(self, key: str, idx: int | Sequence[int] | None = None) -> Any:
        if isinstance(idx, int):
            return self.info[idx][key]
        return [self.info[i][key] for i in (self.out_indices if idx is None else idx)]

    def get_dicts(self, keys: Sequence[str] | None = None, idx: int | Sequence[int] | None = None) -> Any:
        if isinstance(idx, int):
            return {k: v for k, v in self.info[idx].items() if keys is None or k in keys}
        picked = self.out_indices if idx is None else idx
        return [{k: v for k, v in self.info[i].items() if keys is None or k in keys} for i in picked]

    def channels(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("num_chs", idx)

    def reduction(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("reduction", idx)

    def module_name(self, idx: int | Sequence[int] | None = None) -> Any:
        return self.get("module", idx)

    def __getitem__(self, item: int) -> dict[str, Any]:
        return self.info[item]

    def __len__(self) -> int:
        return len(self.info)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.info)

    def __repr__(self) -> str:
        return f"FeatureInfo({self.get_dicts()})"


class _Done(Exception):
    """Raised by the hook of the last stage asked for: the rest of the forward pass is not needed."""


class FeaturesModel(nn.Module):
    """A model's feature maps at `out_indices`: ``forward(x)`` returns them as a list, in the order asked.

    The built model is ``self.model`` (its state dict keys start with ``model.``); ``feature_info`` follows timm.
    """

    def __init__(self, model: nn.Module, card: ModelCard, out_indices: Sequence[int]):
        super().__init__()
        self.model = model
        self.out_indices = tuple(out_indices)
        self.feature_info = FeatureInfo(card.feature_stages, self.out_indices)
        self._modules_by_index = {i: card.feature_stages[i].module for i in self.out_indices}
        self._last = max(self.out_indices)
        self._found: dict[int, torch.Tensor] = {}
        for index, path in self._modules_by_index.items():
            self.model.get_submodule(path).register_forward_hook(self._hook(index))
        attach_card(self, card)

    def _hook(self, index: int) -> Any:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if index in self._found:
                raise RuntimeError(f"feature stage {self._modules_by_index[index]!r} ran twice in one forward "
                                   "pass; its card's feature_stages should name a module that runs once")
            # A copy: a later in-place operation of the model must not change a map already taken.
            self._found[index] = output if index == self._last else output.clone()
            if index == self._last:
                raise _Done

        return record

    def forward(self, x: Any) -> list[torch.Tensor]:
        self._found = {}
        try:
            self.model(x)
        except _Done:
            pass
        found, self._found = self._found, {}
        missing = [self._modules_by_index[i] for i in self.out_indices if i not in found]
        if missing:
            raise RuntimeError(f"feature stage module(s) {missing} did not run in the model's forward pass")
        return [found[i] for i in self.out_indices]


def features_model(model: nn.Module, card: ModelCard, out_indices: Any = None) -> FeaturesModel:
    """Wrap a built model so that it returns the feature maps of `out_indices` (checked by `feature_indices`)."""
    return FeaturesModel(model, card, feature_indices(card, out_indices))
