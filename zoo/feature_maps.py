"""Running a model up to chosen modules: multi-scale feature maps and what the head reads.

``zoo.create(name, features_only=True, out_indices=...)`` returns a `FeaturesModel`. The stages are
card data (`zoo.cards.FeatureStage`); `feature_indices` checks `out_indices` against them. Forward
hooks on the stage modules record their outputs and the forward pass stops after the last stage
asked for, so the head never runs. Image maps come back ``NCHW`` whatever the module outputs:
``NHWC`` maps (Swin) are permuted, ``NLC`` tokens (a ViT's blocks) lose their `prefix_tokens` and are
laid out on the patch grid (input side / reduction). `FeatureInfo` has timm's names and semantics
(``channels()``, ``reduction()``, ``module_name()``, and per stage a dict with ``num_chs``,
``reduction``, ``module``). The public helpers built on this are in `zoo.features`.
"""
from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from .cards import FeatureStage, ModelCard, attach_card
from .errors import InvalidArgumentError, ZooError

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
        raise InvalidArgumentError(
            f"out_indices {list(out_indices)}: {bad} out of range; {valid}: {stage_listing(card)}")
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


def stage_listing(card: ModelCard) -> str:
    """Each feature stage of `card` with its index, for error messages."""
    return ", ".join(f"{i}: {s.module} ({s.channels} ch, /{s.reduction})" for i, s in enumerate(card.feature_stages))


# ---------------------------------------------------------------------------- running up to a module


class _Done(Exception):
    """Raised by the hook of the last module needed: the rest of the forward pass is not needed."""


def split_inputs(inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A model's inputs as (positional, keyword) arguments: a dict is keywords, a tuple or list positionals."""
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    if isinstance(inputs, (list, tuple)):
        return tuple(inputs), {}
    return (inputs,), {}


def module_outputs(model: nn.Module, inputs: Any, modules: Mapping[int, str], *, what: str,
                   copy: Collection[int] | None = None) -> dict[int, Any]:
    """Run `model` on `inputs` until the last of `modules` (index -> module path) has run; their outputs.

    The forward pass stops there. The outputs at `copy` (default: all but the last) are copied, so a
    later in-place operation of the model cannot change them (`overwritten_outputs` finds which need it).
    """
    last = max(modules)
    copied = set(modules) - {last} if copy is None else set(copy)
    found: dict[int, Any] = {}

    def hook(index: int) -> Any:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            if index in found:
                raise ZooError(f"{what} {modules[index]!r} ran twice in one forward pass; the card should name "
                               "a module that runs once")
            found[index] = output.clone() if index in copied else output
            if index == last:
                raise _Done
        return record

    handles = [model.get_submodule(path).register_forward_hook(hook(index)) for index, path in modules.items()]
    args, kwargs = split_inputs(inputs)
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


def head_input(model: nn.Module, inputs: Any, path: str) -> torch.Tensor:
    """What the module at `path` receives when `model` runs on `inputs`; the forward pass stops there."""
    found: list[torch.Tensor] = []

    def record(module: nn.Module, args: Any) -> None:
        found.append(args[0])
        raise _Done

    handle = model.get_submodule(path).register_forward_pre_hook(record)
    args, kwargs = split_inputs(inputs)
    try:
        model(*args, **kwargs)
    except _Done:
        pass
    finally:
        handle.remove()
    if not found:
        raise ZooError(f"the head {path!r} did not run in the model's forward pass")
    return found[0]


def image_size(inputs: Any) -> tuple[int, int]:
    args, kwargs = split_inputs(inputs)
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


def overwritten_outputs(model: nn.Module, inputs: torch.Tensor, modules: Mapping[int, str]) -> set[int]:
    """Which of `modules`' outputs the forward pass changes in place before it stops at the last of them.

    One extra pass on the first example, outside inference mode (whose tensors keep no version
    counter): an output whose version counter moved after its hook ran was written over (an in-place
    ReLU after a BatchNorm named as a stage), and only those need copying.
    """
    last = max(modules)
    versions: dict[int, tuple[torch.Tensor, int]] = {}

    def hook(index: int) -> Any:
        def record(module: nn.Module, args: Any, output: Any) -> None:
            versions[index] = (output, output._version)
            if index == last:
                raise _Done
        return record

    handles = [model.get_submodule(path).register_forward_hook(hook(index)) for index, path in modules.items()]
    try:
        with torch.inference_mode(False), torch.no_grad():
            model(inputs[:1].clone())
    except _Done:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return {index for index, (output, version) in versions.items() if output._version != version}


def stage_maps(model: nn.Module, card: ModelCard, inputs: Any, indices: Sequence[int],
               copy: Collection[int] | None = None) -> dict[int, torch.Tensor]:
    """The ``NCHW`` maps of the stages at `indices` (valid, non-negative), stopping after the last; `copy` as
    in `module_outputs`."""
    stages = card.feature_stages
    found = module_outputs(model, inputs, {i: stages[i].module for i in indices}, what="feature stage", copy=copy)
    size = image_size(inputs) if any(stages[i].layout == "NLC" for i in indices) else (0, 0)
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
        self._overwritten: set[int] | None = None  # found on the first call in eval mode
        attach_card(self, card)

    def forward(self, x: Any) -> list[torch.Tensor]:
        maps = stage_maps(self.model, self._card, x, self.out_indices, copy=self._copied(x))
        return [maps[i] for i in self.out_indices]

    def _copied(self, x: Any) -> set[int] | None:
        """The stages whose maps must be copied (None: all but the last). Copying a map the model never
        writes over again costs as much as a stage's worth of memory traffic, so in eval mode a first
        probe finds those that are; in training mode (BatchNorm statistics would move) all are copied."""
        if self.training or not isinstance(x, torch.Tensor) or not len(x):
            return None
        if self._overwritten is None:
            stages = self._card.feature_stages
            self._overwritten = overwritten_outputs(self.model, x, {i: stages[i].module for i in self.out_indices})
        return self._overwritten


def features_model(model: nn.Module, card: ModelCard, out_indices: Any = None) -> FeaturesModel:
    """Wrap a built model so that it returns the feature maps of `out_indices` (checked by `feature_indices`)."""
    return FeaturesModel(model, card, feature_indices(card, out_indices))
