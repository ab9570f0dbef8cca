"""Layer groups (from the card) and optimizer parameter groups over all of them.

`layer_groups` splits a model's parameters into the card's ``layer_groups``, input side
first, with the head last; the modules built fresh beside the head (``extra["head_companions"]``)
are in the head's group. `param_groups` builds optimizer groups over *every* parameter,
trainable or not, so a later `unfreeze` only flips ``requires_grad``: frozen parameters
have no gradient and the optimizer skips them until then.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from torch import nn

from ..cards import card_of
from ..errors import InvalidArgumentError, ZooError
from ..head_companions import head_companions, within
from ._select import examples, matches_any, under

NORM_TYPES: tuple[type, ...] = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)
if hasattr(nn, "RMSNorm"):
    NORM_TYPES += (nn.RMSNorm,)


def group_prefixes(model: nn.Module) -> list[str]:
    """The card's layer-group prefixes, checked against the model, with the head last.

    Without ``layer_groups`` on the card each top-level child holding parameters is a group. A group inside
    one of the head's companions is left out: they belong to the head's group.
    """
    card = card_of(model)
    modules = dict(model.named_modules())
    prefixes = list(card.layer_groups)
    if not prefixes:
        prefixes = [name for name, child in model.named_children() if any(True for _ in child.parameters())]
    companions = head_companions(card) if card.head else []
    prefixes = [p for p in prefixes if not within(p, companions)]
    missing = [p for p in prefixes if p not in modules]
    if missing:
        raise ZooError(f"model {card.name!r}: its card's layer_groups name {missing}, which the model does not "
                       f"have; its top-level modules are {examples(n for n, _ in model.named_children())}. "
                       "Fix layer_groups in the card")
    if card.head and not any(under(card.head, p) for p in prefixes):
        prefixes.append(card.head)
    return prefixes


def assign_groups(model: nn.Module) -> tuple[list[str], dict[str, int]]:
    """Each parameter name -> index of its layer group.

    A parameter belongs to the group whose prefix is its longest enclosing module; one inside a
    companion of the head to the head's group; one outside every group (a position embedding, say)
    joins the group of the parameter before it, or the first group.
    """
    prefixes = group_prefixes(model)
    card = card_of(model)
    companions = head_companions(card) if card.head else []
    head_group = _owner(str(card.head), prefixes) if companions else None
    index: dict[str, int] = {}
    previous = 0
    for name, _ in model.named_parameters():
        if head_group is not None and within(name, companions):
            index[name] = head_group
            continue
        owner = _owner(name, prefixes)
        previous = owner if owner is not None else previous
        index[name] = previous
    return prefixes, index


def _owner(name: str, prefixes: list[str]) -> int | None:
    """Index of the longest prefix enclosing `name`."""
    owners = [i for i, p in enumerate(prefixes) if under(name, p)]
    return max(owners, key=lambda i: len(prefixes[i])) if owners else None


def layer_groups(model: nn.Module) -> list[tuple[str, list[nn.Parameter]]]:
    """``[(prefix, [parameters])]`` from the input side to the head."""
    prefixes, index = assign_groups(model)
    out: list[tuple[str, list[nn.Parameter]]] = [(p, []) for p in prefixes]
    for name, param in model.named_parameters():
        out[index[name]][1].append(param)
    return out


def no_decay_names(model: nn.Module, extra: Iterable[str] = ()) -> set[str]:
    """Parameters that get no weight decay: biases, 1-D tensors, normalization layers, `extra` patterns."""
    extra = list(extra)
    names = set()
    for module_name, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{pname}" if module_name else pname
            if param.ndim <= 1 or isinstance(module, NORM_TYPES) or matches_any(full, extra):
                names.add(full)
    return names


def param_groups(
    model: nn.Module,
    lr: float,
    *,
    layer_decay: float | None = None,
    lr_mult: Mapping[str, float] | None = None,
    weight_decay: float = 0.0,
    no_decay: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Optimizer parameter groups over every parameter of `model`, frozen ones included.

    Args:
        lr: the learning rate of the head (the last layer group).
        layer_decay: each group towards the input gets ``layer_decay`` times the rate of the next
            (``lr * layer_decay ** (groups - 1 - i)``), as in layer-wise rate decay.
        lr_mult: ``{pattern: multiplier}``; a parameter matching a pattern (first match wins) has
            its rate multiplied, e.g. ``{"classifier": 10.0}``.
        weight_decay: decay for weights; biases, 1-D tensors and normalization layers get none.
        no_decay: more name patterns that get no weight decay (``["*pos_embed*"]``).

    Each group dict has ``params``, ``lr`` (already scaled: `lr` times the group's layer decay and
    multiplier), ``weight_decay`` and ``group`` (the layer-group prefix), which optimizers carry
    along untouched. Pass the list straight to ``torch.optim.AdamW(param_groups(model, 1e-3))``.

    The scale is applied here, once, and no ``lr_scale`` key is set: torch's schedulers multiply
    each group's own ``lr``, and timm's schedulers multiply by ``lr_scale`` when a group has one,
    so a group carrying both a scaled ``lr`` and an ``lr_scale`` would be scaled twice under timm.
    """
    if layer_decay is not None and not 0.0 < layer_decay <= 1.0:
        raise InvalidArgumentError(f"layer_decay must be in (0, 1], got {layer_decay!r}")
    prefixes, index = assign_groups(model)
    skip_decay = no_decay_names(model, no_decay)
    mults = dict(lr_mult or {})
    unused = [p for p in mults if not any(matches_any(n, [p]) for n, _ in model.named_parameters())]
    if unused:
        raise InvalidArgumentError(f"lr_mult patterns {unused} match no parameter; layer groups are {prefixes}")
    buckets: dict[tuple[int, float, float], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        i = index[name]
        mult = next((m for p, m in mults.items() if matches_any(name, [p])), 1.0)
        scale = (layer_decay ** (len(prefixes) - 1 - i) if layer_decay else 1.0) * mult
        decay = 0.0 if name in skip_decay else weight_decay
        buckets.setdefault((i, scale, decay), []).append(param)
    return [
        {"params": params, "lr": lr * scale, "weight_decay": decay, "group": prefixes[i]}
        for (i, scale, decay), params in sorted(buckets.items(), key=lambda kv: kv[0])
    ]
