"""Feature maps, intermediate layers and the model's own helpers, for every zoo-created model.

Multi-scale maps: ``zoo.create(name, features_only=True, out_indices=...)`` returns a `FeaturesModel`.
The stages are card data (`zoo.cards.FeatureStage`); `feature_indices` checks `out_indices` against
them without torch. Forward hooks on the stage modules record their outputs and the forward pass
stops after the last stage asked for, so the head never runs. Image maps come back ``NCHW`` whatever
the module outputs: ``NHWC`` maps (Swin) are permuted, ``NLC`` tokens (a ViT's blocks) lose their
`prefix_tokens` and are laid out on the patch grid (input side / reduction). `FeatureInfo` has timm's
names and semantics (``channels()``, ``reduction()``, ``module_name()``, and per stage a dict with
``num_chs``, ``reduction``, ``module``).

The model's helpers are plain functions, the same for every family (no class is patched):

- `forward_features(model, x)`: unpooled features (image: the last stage's map ``[B, C, H, W]``;
  text: the last hidden states ``[B, T, D]``; speech: the encoder output ``[B, T', D]``);
- `forward_pooled(model, x)`: what the head reads (the input of the card's ``head`` module);
- `forward_head(model, pooled)`: the card's head applied, so in eval mode
  ``forward_head(m, forward_pooled(m, x))`` equals ``m(x)``;
- `forward_intermediates(model, x, indices=None, intermediates_only=False)`: timm's semantics;
- `pooled_intermediates(model, x, indices=None)`: each chosen layer pooled to one vector per example;
- `remove_head(model)` and `reset_head(model, num_classes)` to swap or drop the head.

`x` is what the model's forward takes: a tensor, a tuple of positional arguments, or a dict of
keyword arguments (``{"input_ids": ..., "attention_mask": ...}`` for text, ``(waveforms, lengths)``
for speech). Image models are served from their card's `feature_stages`. A module a family defines
itself takes part by defining ``forward_intermediates(*inputs, indices=None, intermediates_only=False)``,
``forward_features(*inputs)`` and ``num_intermediates``, and optionally ``pooled_intermediates(*inputs,
indices=None)`` and ``forward_pooled(*inputs)`` (used when the card names no head); the functions here
call those methods when a model has them.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .cards import FeatureStage, ModelCard, attach_card, card_of
from .errors import InvalidArgumentError, ZooError
from .finetune.heads import get_head, reset_head

__all__ = [
    "FeatureInfo", "FeaturesModel", "feature_indices", "features_model", "forward_features", "forward_head",
    "forward_intermediates", "forward_pooled", "num_intermediates", "pooled_intermediates", "remove_head",
    "reset_head", "take_indices",
]


# ---------------------------------------------------------------------------- indices


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


def take_indices(count: int, indices: int | Sequence[int] | None = None, *, what: str = "layers",
                 listing: str = "") -> tuple[int, ...]:
    """timm's `indices` of `forward_intermediates` as non-negative positions among `count` layers.

    None takes every layer; an int ``n`` the last ``n``; a list or tuple the layers it names, in its
    order (negative ones count from the end). Anything out of range is an error naming the valid
    indices (and `listing`, what each one is, when given).
    """
    valid = f"the model has {count} {what}: indices 0 to {count - 1} (or -{count} to -1)"
    if listing:
        valid = f"{valid}: {listing}"
    if indices is None:
        return tuple(range(count))
    if isinstance(indices, int) and not isinstance(indices, bool):
        if not 1 <= indices <= count:
            raise InvalidArgumentError(f"indices={indices} asks for the last {indices} {what}, but {valid}; "
                                       f"give a number from 1 to {count}")
        return tuple(range(count - indices, count))
    if not isinstance(indices, (list, tuple)) or not indices or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in indices):
        raise InvalidArgumentError(f"indices must be None, a count of last {what} or a non-empty list of indices, "
                                   f"got {indices!r}")
    bad = [i for i in indices if not -count <= i < count]
    if bad:
        raise InvalidArgumentError(f"indices {list(indices)}: {bad} out of range; {valid}")
    taken = tuple(i % count for i in indices)
    if len(set(taken)) != len(taken):
        raise InvalidArgumentError(f"indices {list(indices)} names a layer more than once; {valid}")
    return taken


def _listing(card: ModelCard) -> str:
    return ", ".join(f"{i}: {s.module} ({s.channels} ch, /{s.reduction})" for i, s in enumerate(card.feature_stages))


# ---------------------------------------------------------------------------- running up to a module


class _Done(Exception):
    """Raised by the hook of the last module needed: the rest of the forward pass is not needed."""


def _split(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A model's inputs as (positional, keyword) arguments: a dict is keywords, a tuple or list positionals."""
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, (list, tuple)):
        return tuple(inputs), {}
    return (inputs,), {}


def _stage_outputs(model: nn.Module, inputs: Any, modules: Mapping[int, str], *, what: str) -> dict[int, Any]:
    """Run `model` on `inputs` until the last of `modules` (index -> module path) has run; their outputs.

    The forward pass stops there. Every output but the last is copied, so a later in-place operation
    of the model cannot change it.
    """
    last = max(modules)
    found: dict[int, Any] = {}

    def hook(index: int) -> Any:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if index in found:
                raise ZooError(f"{what} {modules[index]!r} ran twice in one forward pass; the card should name "
                               "a module that runs once")
            found[index] = output if index == last else output.clone()
            if index == last:
                raise _Done
        return record

    handles = [model.get_submodule(path).register_forward_hook(hook(index)) for index, path in modules.items()]
    args, kwargs = _split(inputs)
    try:
        model(*args, **kwargs)
    except _Done:
        pass
    finally:
        for handle in handles:
            handle.remove()
    missing = [modules[i] for i in modules if i not in found]
    if missing:
        raise ZooError(f"{what} module(s) {missing} did not run in the model's forward pass")
    return found


def _head_input(model: nn.Module, inputs: Any, path: str) -> torch.Tensor:
    """What the module at `path` receives when `model` runs on `inputs`; the forward pass stops there."""
    found: list[torch.Tensor] = []

    def record(module: nn.Module, args: Any) -> None:
        found.append(args[0])
        raise _Done

    handle = model.get_submodule(path).register_forward_pre_hook(record)
    args, kwargs = _split(inputs)
    try:
        model(*args, **kwargs)
    except _Done:
        pass
    finally:
        handle.remove()
    if not found:
        raise ZooError(f"the head {path!r} did not run in the model's forward pass")
    return found[0]


def _image_size(inputs: Any) -> tuple[int, int]:
    args, kwargs = _split(inputs)
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor) and value.dim() >= 3:
            return int(value.shape[-2]), int(value.shape[-1])
    raise InvalidArgumentError("an image model takes images [batch, channels, height, width]; got no such tensor")


def as_nchw(output: torch.Tensor, stage: FeatureStage, image_size: tuple[int, int]) -> torch.Tensor:
    """A stage's output as an ``NCHW`` map: ``NHWC`` permuted; ``NLC`` tokens, after the stage's
    `prefix_tokens`, laid out on the grid of ``image_size / reduction``."""
    if stage.layout == "NHWC":
        return output.permute(0, 3, 1, 2)
    if stage.layout == "NLC":
        height, width = image_size[0] // stage.reduction, image_size[1] // stage.reduction
        tokens = output[:, stage.prefix_tokens:]
        if tokens.shape[1] != height * width:
            raise ZooError(f"feature stage {stage.module!r} gave {tokens.shape[1]} tokens after its "
                           f"{stage.prefix_tokens} prefix token(s); an input of {image_size[0]}x{image_size[1]} at "
                           f"reduction {stage.reduction} needs {height}x{width}")
        return tokens.reshape(tokens.shape[0], height, width, tokens.shape[2]).permute(0, 3, 1, 2)
    return output


def _stage_maps(model: nn.Module, card: ModelCard, inputs: Any, indices: Sequence[int]) -> dict[int, torch.Tensor]:
    """The ``NCHW`` maps of the stages at `indices` (valid, non-negative), stopping after the last."""
    stages = card.feature_stages
    found = _stage_outputs(model, inputs, {i: stages[i].module for i in indices}, what="feature stage")
    size = _image_size(inputs) if any(stages[i].layout == "NLC" for i in indices) else (0, 0)
    return {i: as_nchw(found[i], stages[i], size) for i in indices}


# ---------------------------------------------------------------------------- features_only


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


class FeaturesModel(nn.Module):
    """A model's feature maps at `out_indices`: ``forward(x)`` returns them as a list, in the order asked.

    The built model is ``self.model`` (its state dict keys start with ``model.``); ``feature_info`` follows timm.
    Image maps are ``NCHW`` whatever layout the stage module outputs.
    """

    def __init__(self, model: nn.Module, card: ModelCard, out_indices: Sequence[int]):
        super().__init__()
        self.model = model
        self.out_indices = tuple(out_indices)
        self.feature_info = FeatureInfo(card.feature_stages, self.out_indices)
        self._card = card
        attach_card(self, card)

    def forward(self, x: Any) -> list[torch.Tensor]:
        maps = _stage_maps(self.model, self._card, x, self.out_indices)
        return [maps[i] for i in self.out_indices]


def features_model(model: nn.Module, card: ModelCard, out_indices: Any = None) -> FeaturesModel:
    """Wrap a built model so that it returns the feature maps of `out_indices` (checked by `feature_indices`)."""
    return FeaturesModel(model, card, feature_indices(card, out_indices))


# ---------------------------------------------------------------------------- the model's helpers


def _own(model: nn.Module) -> bool:
    """Whether the model's own module defines the intermediate-layer methods (text and speech encoders)."""
    return callable(getattr(model, "forward_intermediates", None))


def _unwrapped(model: nn.Module) -> nn.Module:
    return model.model if isinstance(model, FeaturesModel) else model


def _image_card(model: nn.Module, wanted: str) -> ModelCard:
    """The card of an image model with feature stages, or an error saying why `wanted` is not offered."""
    card = card_of(model)
    if card.modality != "image":
        raise InvalidArgumentError(
            f"model {card.name!r} ({type(_unwrapped(model)).__name__}) offers no {wanted}: its module defines no "
            f"forward_intermediates. Text transformers and wav2vec 2.0 / HuBERT / WavLM encoders do; for this model "
            f"forward_pooled(model, x) gives the pooled features")
    if not card.feature_stages:
        raise InvalidArgumentError(f"model {card.name!r} declares no feature stages (card field feature_stages), "
                                   f"so it offers no {wanted}")
    return card


def num_intermediates(model: nn.Module) -> int:
    """How many intermediate layers `forward_intermediates` chooses from (an image model's feature stages)."""
    inner = _unwrapped(model)
    if _own(inner):
        count = getattr(inner, "num_intermediates", None)
        if not isinstance(count, int):
            raise ZooError(f"{type(inner).__name__} defines forward_intermediates but no num_intermediates")
        return count
    return len(_image_card(model, "intermediate layers").feature_stages)


def forward_features(model: nn.Module, x: Any) -> torch.Tensor:
    """Unpooled features: an image model's last feature stage (``NCHW``), a text model's last hidden
    states ``[B, T, D]``, a speech encoder's output ``[B, T', D]``."""
    inner = _unwrapped(model)
    if _own(inner):
        args, kwargs = _split(x)
        features: torch.Tensor = inner.forward_features(*args, **kwargs)  # type: ignore[operator]
        return features
    card = _image_card(model, "unpooled features")
    last = len(card.feature_stages) - 1
    return _stage_maps(inner, card, x, [last])[last]


def forward_pooled(model: nn.Module, x: Any) -> torch.Tensor:
    """Pre-logits: what the card's ``head`` module reads (for a model whose head was removed, its output).

    The forward pass stops at the head. A model whose card names no head (a speech encoder) gives its
    own ``forward_pooled`` (the mean over valid frames).
    """
    inner = _unwrapped(model)
    card = card_of(model)
    if card.head and not isinstance(model, FeaturesModel):
        return _head_input(inner, x, get_head(inner)[0])
    own = getattr(inner, "forward_pooled", None)
    if callable(own):
        args, kwargs = _split(x)
        pooled: torch.Tensor = own(*args, **kwargs)
        return pooled
    raise InvalidArgumentError(f"model {card.name!r} has no head to read pooled features from"
                               + (" (a features_only model returns feature maps; create it without features_only)"
                                  if isinstance(model, FeaturesModel) else "; its card names none"))


def forward_head(model: nn.Module, pooled: torch.Tensor) -> torch.Tensor:
    """The card's head applied to `pooled` (what `forward_pooled` gives): the logits."""
    if isinstance(model, FeaturesModel):
        raise InvalidArgumentError(f"model {card_of(model).name!r} was created with features_only=True and has "
                                   "no head")
    logits: torch.Tensor = get_head(model)[1](pooled)
    return logits


def forward_intermediates(
    model: nn.Module, x: Any, indices: int | Sequence[int] | None = None, intermediates_only: bool = False,
) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
    """Intermediate layers' outputs, as timm's ``forward_intermediates``.

    `indices`: None for every layer, an int ``n`` for the last ``n``, or a list of indices (negative
    ones count from the end); out of range is an error listing the valid ones. Image models give their
    feature stages' maps (``NCHW``), text transformers each encoder layer's hidden states ``[B, T, D]``
    (computed with the attention mask), speech encoders each transformer layer's output ``[B, T', D]``
    (computed with the lengths). Returns the list in the order asked, or ``(final, list)`` when not
    `intermediates_only`, where ``final`` is `forward_features`. With `intermediates_only` the forward
    pass stops after the last layer asked for.
    """
    inner = _unwrapped(model)
    if _own(inner):
        args, kwargs = _split(x)
        result: Any = inner.forward_intermediates(  # type: ignore[operator]
            *args, **kwargs, indices=indices, intermediates_only=intermediates_only)
        return result  # type: ignore[no-any-return]
    final, found = _image_intermediates(model, x, indices, with_final=not intermediates_only)
    return found if final is None else (final, found)


def _image_intermediates(model: nn.Module, x: Any, indices: int | Sequence[int] | None, *, with_final: bool,
                         ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
    """An image model's stage maps at `indices`, and its last stage's map when `with_final`."""
    card = _image_card(model, "intermediate layers")
    stages = card.feature_stages
    taken = take_indices(len(stages), indices, what="feature stages", listing=_listing(card))
    last = len(stages) - 1
    maps = _stage_maps(_unwrapped(model), card, x, sorted({*taken, last} if with_final else set(taken)))
    return (maps[last] if with_final else None), [maps[i] for i in taken]


def pooled_intermediates(model: nn.Module, x: Any, indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
    """`forward_intermediates` pooled to ``[B, D]`` per layer: an image map averaged over its pixels, text
    hidden states over the real tokens (attention mask), speech hidden states over the valid frames."""
    inner = _unwrapped(model)
    own = getattr(inner, "pooled_intermediates", None)
    if _own(inner) and callable(own):
        args, kwargs = _split(x)
        pooled: list[torch.Tensor] = own(*args, **kwargs, indices=indices)
        return pooled
    if _own(inner):
        raise InvalidArgumentError(f"{type(inner).__name__} defines forward_intermediates but not "
                                   "pooled_intermediates, so zoo does not know how to pool its layers")
    _, maps = _image_intermediates(model, x, indices, with_final=False)
    return [m.mean(dim=(2, 3)) for m in maps]


def remove_head(model: nn.Module) -> nn.Module:
    """Replace the head with ``nn.Identity`` (``reset_head(model, 0)``): the model then returns its pooled
    features. Returns `model`."""
    reset_head(model, 0)
    return model
