"""`zoo.create`: a name -> a build plan from its source -> one assembly (builder, weights, head, freezing).

Each source only says what it knows (`zoo.builders.BuildPlan`): a registered name with its card
and weights (here and in `zoo.weights.pretrained`), a saved folder or Hub repo
(`zoo.weights.saved`). `assemble` does the rest for all of them, and imports the builder only
through `zoo.builders.import_builder`, where the trust rule lives.

torch and the plugin's model code are imported inside the functions, so that `import zoo` and
listing stay free of them.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .arguments import check_input_sizes, checked_num_classes, checked_pretrained
from .builders import BuildPlan, accepts, call_builder, check_kwargs, import_builder
from .cards import CARD_ATTRIBUTE, attach_card, card_of
from .errors import InvalidArgumentError, ZooError
from .names import SAVED_PREFIXES, is_saved_name
from .registry import Resolved, default_registry

# Kept importable from here for code written before they moved beside the card and the builder.
__all__ = ["CARD_ATTRIBUTE", "SAVED_PREFIXES", "BuildPlan", "accepts", "assemble", "attach_card", "build",
           "call_builder", "card_of", "check_kwargs", "create", "import_builder"]

if TYPE_CHECKING:
    import torch


def create(
    name: str,
    *,
    pretrained: bool | None = None,
    num_classes: int | None = None,
    freeze: Any = None,
    **kwargs: Any,
) -> torch.nn.Module:
    """Build a registered model.

    Args:
        name: a registered name or alias, ``name.tag`` for one set of weights, a recipe,
            ``hf-hub:org/repo`` or ``local-dir:PATH`` for a saved model.
        pretrained: load the default (or tagged) weights. Defaults to False, or to what
            a recipe says.
        num_classes: outputs of a new head; ``0`` removes the head and returns pooled
            features. With weights of another class count, only the head is left untrained.
        freeze: what to freeze, as in `zoo.finetune.freeze` (``"backbone"``, an integer
            over layer groups, or name patterns).
        **kwargs: keyword arguments of the model's builder; unknown ones are an error.

    The returned module carries its card as ``module.zoo_card``.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"a model name is a string such as 'resnet50' or 'local-dir:PATH', got {name!r}")
    checked_pretrained(pretrained)
    checked_num_classes(num_classes)
    if is_saved_name(name):
        from .weights.saved import saved_plan  # reads files with torch and safetensors

        freeze_bn = kwargs.pop("freeze_bn", "frozen")
        plan = saved_plan(name, pretrained=pretrained, **kwargs)
        return assemble(plan, num_classes=num_classes, freeze=freeze, freeze_bn=freeze_bn)
    resolved = default_registry().resolve(name)
    return build(resolved, pretrained=pretrained, num_classes=num_classes, freeze=freeze, **kwargs)


def build(
    resolved: Resolved,
    *,
    pretrained: bool | None = None,
    num_classes: int | None = None,
    freeze: Any = None,
    **kwargs: Any,
) -> torch.nn.Module:
    """Build the model a `Resolved` names (the part of `create` after the lookup)."""
    card = resolved.card
    given = {"pretrained": pretrained, "num_classes": num_classes, "freeze": freeze}
    options = {**resolved.options, **{k: v for k, v in given.items() if v is not None}, **kwargs}
    missing = [key for key in resolved.required if options.get(key) is None]
    if missing:
        example = ", ".join(f"{key}=..." for key in missing)
        raise InvalidArgumentError(f"{card.name!r} needs {', '.join(missing)}: zoo.create({card.name!r}, {example})")
    pretrained = bool(checked_pretrained(options.pop("pretrained", False)))
    num_classes = checked_num_classes(options.pop("num_classes", None))
    freeze = options.pop("freeze", None)
    freeze_bn = options.pop("freeze_bn", "frozen")
    check_input_sizes(options)

    plan = registry_plan(resolved, options, pretrained=pretrained, num_classes=num_classes)
    return assemble(plan, num_classes=num_classes, freeze=freeze, freeze_bn=freeze_bn)


def registry_plan(resolved: Resolved, options: dict[str, Any], *, pretrained: bool,
                  num_classes: int | None) -> BuildPlan:
    """The plan for a registered model: its card, the builder's keywords, and its weights when `pretrained`."""
    card = resolved.card
    tag = None
    if pretrained:
        tag = resolved.tag or card.default_weights
        if tag is None:
            raise ZooError(f"model {card.name!r} has no pretrained weights; use pretrained=False, "
                           f"or see `zoo list --pretrained` for models that have them")
    builder = import_builder(card)
    builder_kwargs = {**card.defaults, **options}
    check_kwargs(card, builder, builder_kwargs)  # before any download
    takes_classes = accepts(builder, "num_classes")
    if tag is not None:
        from .weights.pretrained import pretrained_plan  # reads weights with torch

        return pretrained_plan(card, tag, builder_kwargs, takes_classes=takes_classes, num_classes=num_classes)
    if num_classes and takes_classes:
        builder_kwargs["num_classes"] = num_classes
    built_classes = builder_kwargs.get("num_classes", card.class_count())
    return BuildPlan(card=dataclasses.replace(card, defaults=builder_kwargs, default_weights=None,
                                              num_classes=built_classes))


def assemble(plan: BuildPlan, *, num_classes: int | None = None, freeze: Any = None,
             freeze_bn: str = "frozen") -> torch.nn.Module:
    """Build what a plan describes: import the builder, build (lean when there are weights), load,
    replay a saved head, attach the card, then give it `num_classes` outputs and `freeze` it."""
    from .finetune.heads import reset_head  # torch
    from .weights.loading import build_module  # torch

    card = plan.card
    builder = import_builder(card)
    kwargs = plan.kwargs
    check_kwargs(card, builder, kwargs)

    def prepare(model: torch.nn.Module) -> None:
        attach_card(model, card)
        if plan.saved_head is not None and card.head:
            _replay_head(model, plan.saved_head)

    model = build_module(card, builder, kwargs, plan.state, head_optional=plan.head_optional, where=plan.where,
                         prepare=prepare)
    if plan.location is not None:
        attach_card(model, dataclasses.replace(card, extra={**card.extra, "weights_location": plan.location}))
    if num_classes is not None and num_classes != card.num_classes:
        reset_head(model, num_classes)
    if freeze is not None:
        from .finetune.freezing import freeze as freeze_model  # torch

        freeze_model(model, freeze, bn=freeze_bn)
    return model


def _replay_head(model: torch.nn.Module, saved_classes: int) -> None:
    """Give a freshly built model the head it had when saved (what `reset_head` did before saving)."""
    from torch import nn  # torch stays off zoo's import path

    from .finetune.heads import get_head, output_layer, reset_head

    _, head = get_head(model)
    found = output_layer(head)
    outputs = getattr(found[1], "out_features", getattr(found[1], "out_channels", None)) if found else None
    if (saved_classes == 0 and not isinstance(head, nn.Identity)) or (saved_classes and outputs != saved_classes):
        reset_head(model, saved_classes)
