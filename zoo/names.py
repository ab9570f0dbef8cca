"""The forms a model name takes besides a registered name: ``local-dir:PATH`` and ``hf-hub:org/repo``.

A registered name may carry one namespace (``timm/resnet50.a1_in1k``), which also reads as a relative
path. A name the registry knows is always the model, even where a folder of that name exists; the
folder is then ``./timm/resnet50`` or ``local-dir:timm/resnet50``.
"""
from __future__ import annotations

import os

LOCAL_PREFIX = "local-dir:"
HUB_PREFIX = "hf-hub:"
SAVED_PREFIXES = (LOCAL_PREFIX, HUB_PREFIX)


def model_source(name: str) -> str:
    """`name` as `zoo.create` reads it: a folder on disk stands for ``local-dir:FOLDER``, unless the name is
    registered (registered names win; ``./NAME`` or ``local-dir:NAME`` names the folder)."""
    if is_saved_name(name) or not os.path.isdir(name) or _is_registered(name):
        return name
    return f"{LOCAL_PREFIX}{name}"


def is_saved_name(name: str) -> bool:
    """Whether `name` points at a saved folder or a Hub repo rather than a registered model."""
    return name.startswith(SAVED_PREFIXES)


def _is_registered(name: str) -> bool:
    from .registry import default_registry  # reason: loads the plugins, needed only when a folder has the name

    return name in default_registry()
