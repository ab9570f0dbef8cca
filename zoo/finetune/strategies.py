"""Fine-tune strategies: which parts train in which epoch.

A strategy only sets the initial freeze state (`setup`, before the optimizer is built
from `param_groups` over all parameters) and may unfreeze more at the start of an epoch
(`on_epoch_start`, by flipping ``requires_grad``), so the optimizer and the learning-rate
schedule never miss a parameter.

==================== ===========================================================
``no_freeze``        everything trains from the first step
``freeze``           linear probe: only the head trains (features can be cached)
``freeze_unfreeze``  head first, then everything (the default; fastai's ``fine_tune``)
``unfreeze_milestones`` head first, then more layer groups at each milestone epoch
``lora``             low-rank adapters on chosen Linear layers plus the head
==================== ===========================================================
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..cards import card_of, card_or_none
from ..errors import InvalidArgumentError
from ._checks import is_int, is_real, positive_number, require, whole_number
from ._select import under
from .freezing import check_bn_policy, freeze, unfreeze
from .groups import group_prefixes
from .lora import apply_lora
from .options import DEFAULT_STRATEGY


class Strategy:
    """Base class; subclass it (and pass an instance to `get_strategy`) for your own schedule."""

    name = "strategy"
    uses_feature_cache = False

    def setup(self, model: nn.Module) -> None:
        """Set the initial freeze state (called once, before the optimizer is built)."""

    def on_epoch_start(self, model: nn.Module, epoch: int, epochs: int) -> None:
        """Called at the start of every epoch (0-based); may only unfreeze parameters."""

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({options})"


class NoFreeze(Strategy):
    """Full fine-tuning: every parameter trains."""

    name = "no_freeze"

    def setup(self, model: nn.Module) -> None:
        unfreeze(model)


class Freeze(Strategy):
    """Linear probe: the backbone stays frozen (BatchNorm per `bn`), only the head trains."""

    name = "freeze"

    def __init__(self, bn: str = "frozen") -> None:
        check_bn_policy(bn)
        self.bn = bn
        # Cached features are only the live features when nothing in the backbone changes.
        self.uses_feature_cache = bn == "frozen"

    def setup(self, model: nn.Module) -> None:
        freeze(model, "backbone", bn=self.bn)


class FreezeUnfreeze(Strategy):
    """Train the head alone for `freeze_epochs`, then everything.

    The head-only phase takes at most half of the run, so a 1-epoch run trains everything
    and a 2-epoch run gives one epoch to each phase.
    """

    name = "freeze_unfreeze"

    def __init__(self, freeze_epochs: int = 1, bn: str = "frozen") -> None:
        check_bn_policy(bn)
        whole_number("freeze_epochs", freeze_epochs, 0)
        self.freeze_epochs = freeze_epochs
        self.bn = bn

    def head_epochs(self, epochs: int) -> int:
        return min(self.freeze_epochs, epochs // 2)

    def setup(self, model: nn.Module) -> None:
        freeze(model, "backbone", bn=self.bn)

    def on_epoch_start(self, model: nn.Module, epoch: int, epochs: int) -> None:
        if epoch >= self.head_epochs(epochs):
            unfreeze(model)


class UnfreezeMilestones(Strategy):
    """Head first; at each milestone epoch `groups_per_milestone` more layer groups (from the
    head side) train, and from the last milestone on everything trains.

    Without `milestones`, they are spread evenly: (epochs // 3, 2 * epochs // 3).
    """

    name = "unfreeze_milestones"

    def __init__(self, milestones: Sequence[int] | None = None, groups_per_milestone: int = 1,
                 bn: str = "frozen") -> None:
        check_bn_policy(bn)
        require("milestones", milestones, milestones is None or _increasing_epochs(milestones),
                "None or increasing epoch numbers (whole numbers of at least 0)")
        whole_number("groups_per_milestone", groups_per_milestone, 1)
        self.milestones = tuple(milestones) if milestones is not None else None
        self.groups_per_milestone = groups_per_milestone
        self.bn = bn

    def milestones_for(self, epochs: int) -> tuple[int, ...]:
        return self.milestones if self.milestones is not None else (max(epochs // 3, 1), max(2 * epochs // 3, 2))

    def setup(self, model: nn.Module) -> None:
        freeze(model, "backbone", bn=self.bn)

    def on_epoch_start(self, model: nn.Module, epoch: int, epochs: int) -> None:
        milestones = self.milestones_for(epochs)
        reached = sum(1 for m in milestones if epoch >= m)
        if reached == 0:
            return
        if reached >= len(milestones):
            unfreeze(model)
            return
        head = card_of(model).head or ""
        backbone = [p for p in group_prefixes(model) if not (head and under(p, head))]  # the head already trains
        opened = backbone[max(len(backbone) - reached * self.groups_per_milestone, 0):]
        if opened:
            unfreeze(model, opened)


class LoRA(Strategy):
    """Low-rank adapters on the card's ``lora_targets`` (or `targets`); the rest frozen, the head trains."""

    name = "lora"

    def __init__(self, targets: Sequence[str] | None = None, rank: int = 8, alpha: float = 16.0,
                 dropout: float = 0.0) -> None:
        whole_number("rank", rank, 1)
        positive_number("alpha", alpha)
        require("dropout", dropout, is_real(dropout) and 0 <= dropout < 1, "a number from 0 up to (not including) 1")
        self.targets = list(targets) if targets is not None else None
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout

    def setup(self, model: nn.Module) -> None:
        apply_lora(model, self.targets, rank=self.rank, alpha=self.alpha, dropout=self.dropout)


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (FreezeUnfreeze, NoFreeze, Freeze, UnfreezeMilestones, LoRA)
}
DEFAULT = DEFAULT_STRATEGY


def get_strategy(name_or_obj: str | Strategy | None = None, **options: Any) -> Strategy:
    """A strategy by name (options go to its constructor), or a `Strategy` passed through.

    ``None`` gives the default, ``freeze_unfreeze``.
    """
    if isinstance(name_or_obj, Strategy):
        if options:
            raise InvalidArgumentError(f"options {sorted(options)} cannot be applied to an existing {name_or_obj!r}")
        return name_or_obj
    name = DEFAULT if name_or_obj is None else name_or_obj
    if name not in STRATEGIES:
        raise InvalidArgumentError(f"unknown fine-tune strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    try:
        return STRATEGIES[name](**options)
    except InvalidArgumentError:  # an option out of range, already named
        raise
    except TypeError as exc:
        raise InvalidArgumentError(f"strategy {name!r} does not take these options: {exc}") from None


def strategy_for(model: nn.Module, spec: str | Strategy | None = None) -> Strategy | None:
    """The strategy a run of `fit` uses: the one given, or one by name.

    Without one, a zoo model that is wholly trainable gets the default recipe (``freeze_unfreeze``);
    a model with frozen parts (``zoo.create(..., freeze=...)``, a recipe such as ``resnet_ft``) and
    any other module keep their freeze state: what is trainable trains.
    """
    if spec is None:
        if card_or_none(model) is None or not all(p.requires_grad for p in model.parameters()):
            return None
        spec = DEFAULT
    return get_strategy(spec)


def _increasing_epochs(milestones: object) -> bool:
    if not isinstance(milestones, Sequence) or isinstance(milestones, str):
        return False
    return all(is_int(m) and m >= 0 for m in milestones) and list(milestones) == sorted(milestones)
