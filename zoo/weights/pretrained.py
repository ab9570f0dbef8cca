"""A registered card's weights as a build plan: fetched, verified, read and key-mapped.

The model is built with the weights' class count so that every key loads strictly. If the caller
asks for another positive `num_classes` and the builder takes it, the model is built with that
many classes directly and only the head's keys are left out.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from ..builders import BuildPlan
from ..cards import ModelCard
from ..errors import WeightsError
from .formats import read_state_dict
from .loading import apply_key_map
from .sources import fetch, parse_source, remove_cached, weights_of


def pretrained_plan(card: ModelCard, tag: str, builder_kwargs: dict[str, Any], *, takes_classes: bool,
                    num_classes: int | None) -> BuildPlan:
    """The plan to build `card` with its weights `tag`; `builder_kwargs` get the class count built with."""
    weights = weights_of(card, tag)
    what = f"{card.name}.{tag}"
    path = fetch(card, tag)
    head_optional = weights.num_classes is None
    if takes_classes and weights.num_classes is not None:
        if num_classes and num_classes != weights.num_classes and card.head:
            builder_kwargs["num_classes"] = num_classes
            head_optional = True
        else:
            builder_kwargs["num_classes"] = weights.num_classes
    elif takes_classes and num_classes and card.head:
        # head-less weights (a base encoder): the builder makes the head asked for, as with pretrained=False,
        # so a family whose head is more than one layer (a dense layer before the output) gets all of it fresh
        builder_kwargs["num_classes"] = num_classes
    kind = parse_source(weights).kind
    try:
        state = read_state_dict(path)
    except WeightsError:
        if kind != "local":
            remove_cached(path)
        raise
    built_classes = builder_kwargs.get("num_classes", card.class_count(tag))
    final = dataclasses.replace(card, defaults=builder_kwargs, default_weights=tag, num_classes=built_classes)
    return BuildPlan(card=final, state=apply_key_map(state, weights.key_map, what), head_optional=head_optional,
                     where=f"{what} ({path})", location=str(path.parent if kind == "hf-hub" else path))
