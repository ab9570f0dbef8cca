"""Freezing parts of a model, with a policy for the BatchNorm layers inside the frozen part.

`freeze(model, spec)` makes the parts `spec` names frozen and everything else trainable:

- ``"backbone"`` (or ``True``): all but the card's head and the modules built fresh beside it
  (``extra["head_companions"]``, see `zoo.head_companions`);
- an integer ``n``: the first ``n`` layer groups of the card (fastai's ``freeze_to``;
  ``-1`` freezes all groups but the last);
- name patterns (a string or a list; shell wildcards over module and parameter names).

BatchNorm policies for the normalization layers in the frozen part:

- ``"frozen"`` (default): scale/shift frozen and running statistics fixed, even in
  ``model.train()``: a frozen backbone gives the same features in training as in eval.
- ``"affine"``: running statistics fixed, scale/shift trainable.
- ``"train"``: the layers train as usual (statistics update, scale/shift trainable).

How statistics stay fixed: each such layer gets a flag ``zoo_keep_eval = True`` and a
forward pre-hook that puts it back in eval mode before every call, so ``model.train()``
cannot switch it back between calls. The flag and the hook are plain module state: they
survive ``model.train()``, ``state_dict``/``load_state_dict``, ``copy.deepcopy`` and
pickling, and `unfreeze` clears the flag. (``layer.training`` may read True after
``model.train()`` until the layer's next call; only its behaviour is guaranteed.)
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from ..cards import card_of
from ..errors import InvalidArgumentError, ZooError
from ..head_companions import head_parts, within
from ._select import as_patterns, examples, matches, under
from .groups import assign_groups
from .options import BN_POLICIES

KEEP_EVAL = "zoo_keep_eval"
_STATS_LAYERS = (nn.modules.batchnorm._NormBase,)

FreezeSpec = bool | int | str | Sequence[str]
"""What to freeze: ``"backbone"`` (or True), a number of layer groups, or name patterns."""


def check_bn_policy(bn: object) -> None:
    """`bn` is one of `BN_POLICIES`."""
    if bn not in BN_POLICIES:
        raise InvalidArgumentError(f"bn must be one of {BN_POLICIES}, got {bn!r}")


def freeze(model: nn.Module, spec: FreezeSpec = "backbone", bn: str = "frozen") -> list[str]:
    """Freeze what `spec` names and make the rest trainable; returns the frozen parameter names.

    A spec that matches no parameter is an error (it is almost always a typo).
    """
    check_bn_policy(bn)
    selected = _selector(model, spec)
    for name, param in model.named_parameters():
        param.requires_grad_(not selected(name))
    for name, layer in _stats_layers(model):
        if _layer_selected(name, layer, selected):
            keep_eval = bn in ("frozen", "affine")
            for param in layer.parameters(recurse=False):
                param.requires_grad_(bn != "frozen")
            _set_keep_eval(layer, keep_eval, model.training)
        else:
            _set_keep_eval(layer, False, model.training)
    return frozen_parameters(model)


def unfreeze(model: nn.Module, spec: FreezeSpec | None = None) -> list[str]:
    """Make what `spec` names trainable (everything when None); returns the names made trainable.

    Normalization layers inside the unfrozen part train normally again.
    """
    selected = (lambda name: True) if spec is None else _selector(model, spec)
    changed = []
    for name, param in model.named_parameters():
        if selected(name):
            if not param.requires_grad:
                changed.append(name)
            param.requires_grad_(True)
    for name, layer in _stats_layers(model):
        if spec is None or _layer_selected(name, layer, selected):
            _set_keep_eval(layer, False, model.training)
    return changed


def frozen_parameters(model: nn.Module) -> list[str]:
    """Names of parameters that do not train."""
    return [n for n, p in model.named_parameters() if not p.requires_grad]


def kept_in_eval(model: nn.Module) -> list[str]:
    """Names of the normalization layers whose statistics stay fixed in training."""
    return [n for n, m in model.named_modules() if getattr(m, KEEP_EVAL, False)]


# --------------------------------------------------------------------------- internals


def _stats_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, _STATS_LAYERS)]


def _layer_selected(name: str, layer: nn.Module, selected: Callable[[str], bool]) -> bool:
    params = [f"{name}.{p}" for p, _ in layer.named_parameters(recurse=False)]
    if params:
        return all(selected(p) for p in params)
    return selected(f"{name}.running_mean")


def _keep_eval_hook(module: nn.Module, args: Any) -> None:
    if module.training and getattr(module, KEEP_EVAL, False):
        module.training = False


def _set_keep_eval(layer: nn.Module, keep: bool, model_training: bool) -> None:
    if keep:
        if _keep_eval_hook not in layer._forward_pre_hooks.values():
            layer.register_forward_pre_hook(_keep_eval_hook)
        setattr(layer, KEEP_EVAL, True)
        layer.training = False
    elif getattr(layer, KEEP_EVAL, False):
        setattr(layer, KEEP_EVAL, False)
        layer.training = model_training


def _selector(model: nn.Module, spec: FreezeSpec) -> Callable[[str], bool]:
    """A predicate over parameter (and buffer) names for a freeze spec; errors when it selects nothing."""
    card = card_of(model)
    names = [n for n, _ in model.named_parameters()]
    chosen: Callable[[str], bool]
    if spec is True or spec == "backbone":
        if not card.head:
            raise ZooError(f"model {card.name!r} declares no head in its card, so 'backbone' is undefined; "
                           "freeze by layer-group count or by name patterns instead")
        trained = head_parts(card)

        def chosen(name: str) -> bool:
            return not within(name, trained)
    elif isinstance(spec, int) and not isinstance(spec, bool):
        prefixes, index = assign_groups(model)
        count = spec + len(prefixes) if spec < 0 else spec
        if not 0 < count <= len(prefixes):
            raise InvalidArgumentError(
                f"freeze={spec} is out of range for model {card.name!r}, which has {len(prefixes)} layer groups "
                f"{prefixes}; use 1..{len(prefixes)} or -{len(prefixes) - 1}..-1")
        frozen_prefixes = prefixes[:count]

        def chosen(name: str) -> bool:
            if name in index:
                return index[name] < count
            owners = [p for p in prefixes if under(name, p)]
            return bool(owners) and max(owners, key=len) in frozen_prefixes
    elif isinstance(spec, str) or (isinstance(spec, (list, tuple)) and spec and all(isinstance(s, str) for s in spec)):
        patterns = as_patterns(spec)
        for pattern in patterns:
            if not any(matches(n, pattern) for n in names):
                raise InvalidArgumentError(
                    f"freeze pattern {pattern!r} matches no parameter of model {card.name!r}; "
                    f"layer groups are {list(card.layer_groups)}, parameters include {examples(names)}")

        def chosen(name: str) -> bool:
            return any(matches(name, p) for p in patterns)
    else:
        raise InvalidArgumentError(f"cannot freeze by {spec!r}: use 'backbone', an integer over layer groups, "
                                   "or a name pattern / list of name patterns")
    if not any(chosen(n) for n in names):
        raise InvalidArgumentError(f"freeze={spec!r} selects no parameter of model {card.name!r}")
    return chosen
