"""``zoo.create("local-dir:DIR")`` and ``zoo.create("hf-hub:org/repo[@revision]")``: saved models as build plans.

A folder's ``config.json`` says which reader builds it, asked in this order:

1. zoo's own format (key ``"zoo"``, `saved_zoo`): the card the model was saved with;
2. a Hugging Face ``transformers`` checkpoint (key ``"model_type"``, `saved_hf`): the registered card that
   lists the model type;
3. another library's format that an installed plugin reads (`saved_formats`): a card names the config key
   that marks it (``extra["saved_folder_key"]``, e.g. ``"architecture"``) and the reader that makes its card
   (``extra["saved_folder_reader"]``). Without that plugin the folder is refused with the keys it has and
   the formats the installed plugins read.

A folder whose config ships code of its own (``auto_map``) is refused; a folder never names code that no
installed plugin registered.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..builders import BuildPlan
from ..cards import ModelCard, canonical_task
from ..names import HUB_PREFIX
from .model_card import readme_license
from .saved_folder import open_saved
from .saved_formats import folder_card, folder_plan
from .saved_hf import hf_plan, transformers_card
from .saved_zoo import zoo_card, zoo_plan
from .saving import CONFIG_NAME, README_NAME


def saved_plan(name: str, *, pretrained: bool | None = None, task: str | None = None,
               token: str | bool | None = None, **kwargs: Any) -> BuildPlan:
    """The plan for a saved model or transformers checkpoint, from a folder or the Hub.

    `pretrained=False` builds the architecture without reading the weights; ``task=`` picks among
    families for a transformers checkpoint (by default the task its ``architectures`` name);
    ``token=`` is passed to huggingface_hub; other keywords go to the builder.
    """
    task = None if task is None else canonical_task(task, stacklevel=3)  # warns at the caller of zoo.create
    directory, config = open_saved(name, token=token)
    load = True if pretrained is None else pretrained
    if "zoo" in config:
        plan = zoo_plan(directory, config, kwargs, load=load)
    elif "model_type" in config:
        plan = hf_plan(directory, config, kwargs, task=task, load=load)
    else:
        plan = folder_plan(directory, config, kwargs, load=load)
    return dataclasses.replace(plan, card=with_provenance(plan.card, name, directory))


def saved_card(name: str, *, token: str | bool | None = None, task: str | None = None) -> ModelCard:
    """The card of a saved model or transformers checkpoint, read without building it (`zoo info`)."""
    directory, config = open_saved(name, token=token)
    if "zoo" in config:
        card, _ = zoo_card(config, directory / CONFIG_NAME)
    elif "model_type" in config:
        card = transformers_card(config, directory / CONFIG_NAME, task=None if task is None else canonical_task(task))
    else:
        card = folder_card(directory, config)
    return with_provenance(card, name, directory)


def with_provenance(card: ModelCard, name: str, directory: Path) -> ModelCard:
    """`card` with what a model saved from it inherits: the Hub repo it came from (``extra["base_model"]``)
    and, for a checkpoint whose card has no weights of its own, the licence its README.md names."""
    extra: dict[str, Any] = {}
    if name.startswith(HUB_PREFIX):
        extra["base_model"] = name[len(HUB_PREFIX):].partition("@")[0]
    if card.default_weights is None and not card.extra.get("license"):
        found = readme_license(directory / README_NAME)
        if found:
            extra["license"] = found
    return dataclasses.replace(card, extra={**card.extra, **extra}) if extra else card
