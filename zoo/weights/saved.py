"""``zoo.create("local-dir:DIR")`` and ``zoo.create("hf-hub:org/repo[@revision]")``: saved models as build plans.

Two kinds of folders load: zoo's own format (`saved_zoo`) and Hugging Face ``transformers``
checkpoints (`saved_hf`). A folder whose config ships code of its own (``auto_map``) is refused.
"""
from __future__ import annotations

from typing import Any

from ..builders import BuildPlan
from ..cards import ModelCard
from .saved_folder import open_saved
from .saved_hf import canonical_task, hf_plan, transformers_card
from .saved_zoo import zoo_card, zoo_plan
from .saving import CONFIG_NAME


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
        return zoo_plan(directory, config, kwargs, load=load)
    return hf_plan(directory, config, kwargs, task=task, load=load)


def saved_card(name: str, *, token: str | bool | None = None, task: str | None = None) -> ModelCard:
    """The card of a saved model or transformers checkpoint, read without building it (`zoo info`)."""
    directory, config = open_saved(name, token=token)
    if "zoo" in config:
        card, _ = zoo_card(config, directory / CONFIG_NAME)
        return card
    return transformers_card(config, directory / CONFIG_NAME, task=None if task is None else canonical_task(task))
