"""What the create-time options (`zoo.create_options`) do to a built model and to the weights loaded into it.

Module options change the model after the build and before its weights load: dropout rates, stochastic depth
rates, the global pooling, the first convolution's input channels. Weight adaptation is driven by shapes, so
it serves pretrained weights, ``checkpoint_path`` files and saved models alike: a first-conv weight with
another channel count is summed (one channel) or repeated cyclically and rescaled (timm's rule), and a position
embedding for another patch grid is resampled bicubically, its prefix (class) tokens kept.
"""
from __future__ import annotations

import contextlib
import fnmatch
import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from .cards import ModelCard
from .create_options import CreateOptions, checked_spec
from .errors import CardError, InvalidArgumentError, WeightsError
from .weights.loading import parameters_on_meta

_DTYPES = {"float32": torch.float32, "float": torch.float32, "float16": torch.float16, "half": torch.float16,
           "bfloat16": torch.bfloat16, "float64": torch.float64, "double": torch.float64}


# ---------------------------------------------------------------------------- device and dtype


def torch_device(value: Any) -> torch.device | None:
    """`value` (``"cpu"``, ``"cuda:1"``, a ``torch.device``) as a device this machine has; None stays None."""
    if value is None:
        return None
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidArgumentError(f"device must be a torch device such as 'cpu', 'cuda', 'cuda:1' or 'mps' (or "
                                   f"a torch.device), got {value!r}") from None
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as exc:
        cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
        have = "cpu" + (f", cuda:0 to cuda:{cuda - 1}" if cuda else "")
        raise InvalidArgumentError(f"device {value!r} is not available here ({str(exc).splitlines()[0]}); "
                                   f"this machine has: {have}") from None
    return device


def torch_dtype(value: Any) -> torch.dtype | None:
    """`value` (a floating ``torch.dtype`` or its name, ``"bfloat16"``) as a dtype; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = _DTYPES.get(value.removeprefix("torch."), value)
    if not isinstance(value, torch.dtype) or not value.is_floating_point:
        raise InvalidArgumentError(f"dtype must be a floating-point torch dtype: torch.float32, torch.bfloat16, "
                                   f"torch.float16 or torch.float64 (or its name, 'bfloat16'), got {value!r}")
    return value


@contextlib.contextmanager
def placed(device: torch.device | None, dtype: torch.dtype | None) -> Iterator[None]:
    """Tensors created meanwhile go to `device`, floating ones in `dtype` (torch's default dtype is set for
    the build and put back after; it is process-wide, so build models of other dtypes in other threads after).

    For the ``meta`` device only parameters go there while building (builders that compute with tensors, as
    RegNet's does, keep working); the caller moves the rest after.
    """
    with contextlib.ExitStack() as stack:
        if device is not None and device.type == "meta":
            stack.enter_context(parameters_on_meta())
        elif device is not None:
            stack.enter_context(device)
        if dtype is not None:
            stack.callback(torch.set_default_dtype, torch.get_default_dtype())
            torch.set_default_dtype(dtype)
        yield


def placed_state(state: Mapping[str, torch.Tensor], device: torch.device | None,
                 dtype: torch.dtype | None) -> dict[str, torch.Tensor]:
    """The tensors of `state` on `device`, floating ones in `dtype`: converted once, straight from the file."""
    return {k: v.to(device=device, dtype=dtype if dtype is not None and v.is_floating_point() else None)
            for k, v in state.items()}


# ---------------------------------------------------------------------------- modules


class GlobalPool(nn.Module):
    """Global pooling of an ``N, C, H, W`` map to ``N, C, 1, 1`` (the shape the pooling it replaces gave):
    ``avg``, ``max`` or ``avgmax`` (the mean of both)."""

    def __init__(self, pool_type: str):
        super().__init__()
        self.pool_type = pool_type

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool_type == "max":
            return x.amax(dim=(-2, -1), keepdim=True)
        if self.pool_type == "avgmax":
            return 0.5 * (x.mean(dim=(-2, -1), keepdim=True) + x.amax(dim=(-2, -1), keepdim=True))
        return x.mean(dim=(-2, -1), keepdim=True)

    def extra_repr(self) -> str:
        return f"pool_type={self.pool_type!r}"


class Unpooled(nn.Module):
    """``global_pool=""``: passes the feature map on and remembers its shape for `RestoreMap`, since the
    model's own forward flattens it before the (removed) head. Not for one model shared by threads that
    run inputs of different sizes at the same time."""

    def __init__(self) -> None:
        super().__init__()
        self.shape: tuple[int, ...] = ()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shape = tuple(x.shape[1:])
        return x


class RestoreMap(nn.Module):
    """Where the head was: gives the flattened feature map its ``C, H, W`` shape back."""

    def __init__(self, source: Unpooled):
        super().__init__()
        object.__setattr__(self, "source", source)  # not a submodule: it already sits where the pooling was

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        source: Unpooled = object.__getattribute__(self, "source")
        return x.reshape(x.shape[0], *source.shape)


def apply_modules(model: nn.Module, card: ModelCard, options: CreateOptions) -> None:
    """Change `model` as its module options say (before its weights load); a spec naming modules the model
    lacks is a `CardError` naming the card."""
    for option, value in options.module_values().items():
        spec = options.specs[option]
        if option in ("drop_rate", "drop_path_rate"):
            found = _matching(model, card, option, spec["modules"])
            for index, (_, module) in enumerate(found):
                rate = value if option == "drop_rate" or len(found) == 1 else value * index / (len(found) - 1)
                if not isinstance(module, nn.Identity):
                    module.p = rate
        elif option == "global_pool":
            _module(model, card, option, spec["module"], (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, GlobalPool,
                                                          Unpooled), "global pooling layer (AdaptiveAvgPool2d)")
            model.set_submodule(spec["module"], Unpooled() if value == "" else GlobalPool(value))
        elif option == "in_chans":
            _replace_first_conv(model, card, spec["module"], value)


def restore_unpooled(model: nn.Module, card: ModelCard, options: CreateOptions) -> None:
    """After the head was removed: with ``global_pool=""`` (module form) the model returns the unpooled map."""
    if options.module_values().get("global_pool") != "" or not card.head:
        return
    source = model.get_submodule(options.specs["global_pool"]["module"])
    if isinstance(source, Unpooled):
        model.set_submodule(card.head, RestoreMap(source))


def _matching(model: nn.Module, card: ModelCard, option: str, patterns: list[str]) -> list[tuple[str, nn.Module]]:
    """The modules `patterns` match, in model order. An ``nn.Identity`` among them is a stochastic depth layer
    its builder left out at rate 0 (MaxViT's first block): it keeps its place in the schedule, which starts at 0."""
    found = [(name, module) for name, module in model.named_modules()
             if any(fnmatch.fnmatchcase(name, p) for p in patterns)]
    bad = [name for name, module in found
           if not isinstance(module, nn.Identity) and not isinstance(getattr(module, "p", None), float)]
    if len(found) == sum(isinstance(m, nn.Identity) for _, m in found) or bad:
        problem = f"{bad} have no rate 'p'" if bad else "match no module"
        raise CardError(f"the card of model {card.name!r}: create_options[{option!r}] modules {patterns} {problem} "
                        f"in the built {type(model).__name__}; fix the card", field="create_options")
    return found


def _module(model: nn.Module, card: ModelCard, option: str, path: str, kinds: tuple[type, ...],
            wanted: str) -> nn.Module:
    module: nn.Module | None
    try:
        module = model.get_submodule(path)
    except AttributeError:
        module = None
    if module is None or not isinstance(module, kinds):
        what = "no module" if module is None else f"a {type(module).__name__}"
        raise CardError(f"the card of model {card.name!r}: create_options[{option!r}] names {path!r}, which is "
                        f"{what} in the built {type(model).__name__}, not a {wanted}; "
                        "fix the card", field="create_options")
    return module


def _replace_first_conv(model: nn.Module, card: ModelCard, path: str, in_chans: int) -> None:
    old = _module(model, card, "in_chans", path, (nn.Conv2d,), "Conv2d")
    assert isinstance(old, nn.Conv2d)
    if old.groups != 1:
        raise CardError(f"the card of model {card.name!r}: create_options['in_chans'] names {path!r}, a grouped "
                        "convolution; it must name the model's first (ungrouped) convolution", field="create_options")
    if old.in_channels == in_chans:
        return
    new = nn.Conv2d(in_chans, old.out_channels, old.kernel_size, old.stride,  # type: ignore[arg-type]
                    old.padding, old.dilation, 1, old.bias is not None,  # type: ignore[arg-type]
                    old.padding_mode, device=old.weight.device, dtype=old.weight.dtype)
    new.train(old.training)
    model.set_submodule(path, new)


# ---------------------------------------------------------------------------- weights


def adapted_conv_weight(weight: torch.Tensor, in_chans: int) -> torch.Tensor:
    """A conv weight ``[out, C, kh, kw]`` for `in_chans` inputs: summed over C for one channel, else its
    channels repeated cyclically to `in_chans` and scaled by ``C / in_chans`` (so a uniform input gives the
    same response)."""
    channels = weight.shape[1]
    if in_chans == channels:
        return weight
    work = weight.float()
    if in_chans == 1:
        out = work.sum(dim=1, keepdim=True)
    else:
        repeats = math.ceil(in_chans / channels)
        out = work.repeat(1, repeats, *([1] * (weight.ndim - 2)))[:, :in_chans] * (channels / in_chans)
    return out.to(weight.dtype)


def resampled_position_embedding(embedding: torch.Tensor, grid: tuple[int, int], prefix_tokens: int,
                                 where: str) -> torch.Tensor:
    """A ``[1, prefix + h*w, D]`` (or ``[prefix + h*w, D]``) position embedding for a `grid` of patches:
    the patch part resampled bicubically (antialiased when shrinking), the prefix tokens kept."""
    squeeze = embedding.ndim == 2
    work = embedding.unsqueeze(0) if squeeze else embedding
    prefix, patches = work[:, :prefix_tokens], work[:, prefix_tokens:]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise WeightsError(f"{where}: its {patches.shape[1]} position embeddings after {prefix_tokens} prefix "
                           "token(s) are not a square grid of patches; zoo cannot resample them")
    if (side, side) == grid:
        return embedding
    maps = patches.float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    maps = nn.functional.interpolate(maps, size=grid, mode="bicubic", align_corners=False, antialias=True)
    patches = maps.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1).to(embedding.dtype)
    out = torch.cat([prefix, patches], dim=1)
    return out.squeeze(0) if squeeze else out


def adapt_state(model: nn.Module, card: ModelCard, options: CreateOptions | None,
                state: Mapping[str, torch.Tensor], *, where: str) -> dict[str, torch.Tensor]:
    """`state` fitted to `model` where the card's options changed a shape: the first conv's input channels and
    the position embedding's patch grid (only where the file's shape differs from the model's)."""
    expected = model.state_dict(keep_vars=True)
    adapted = dict(state)
    if "in_chans" in card.create_options:
        spec = checked_spec(card, "in_chans")
        key = spec.get("weight") or (f"{spec['module']}.weight" if "module" in spec else None)
        target = expected.get(key) if key else None
        if key in adapted and target is not None and target.ndim == adapted[key].ndim >= 3:
            adapted[key] = adapted_conv_weight(adapted[key], target.shape[1])
    if "img_size" in card.create_options:
        spec = checked_spec(card, "img_size")
        key = spec.get("position_embedding")
        target = expected.get(key) if key else None
        if key in adapted and target is not None and tuple(target.shape) != tuple(adapted[key].shape):
            prefix = int(spec.get("prefix_tokens", 0))
            grid = _grid(options, int(spec["patch_size"]), target.shape[-2] - prefix)
            adapted[key] = resampled_position_embedding(adapted[key], grid, prefix, f"weights {where}, {key}")
    return adapted


def _grid(options: CreateOptions | None, patch: int, tokens: int) -> tuple[int, int]:
    """The patch grid the model was built for: from ``img_size`` when given, else the square of `tokens`."""
    size = options.values.get("img_size") if options is not None else None
    if isinstance(size, tuple):
        return (size[0] // patch, size[-1] // patch)
    if isinstance(size, int):
        return (size // patch, size // patch)
    side = math.isqrt(tokens)
    return (side, side)
