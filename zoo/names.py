"""The forms a model name takes besides a registered name: ``local-dir:PATH`` and ``hf-hub:org/repo``."""
from __future__ import annotations

import os

LOCAL_PREFIX = "local-dir:"
HUB_PREFIX = "hf-hub:"
SAVED_PREFIXES = (LOCAL_PREFIX, HUB_PREFIX)


def model_source(name: str) -> str:
    """`name` as `zoo.create` reads it: a folder on disk stands for ``local-dir:FOLDER``."""
    if not is_saved_name(name) and os.path.isdir(name):
        return f"{LOCAL_PREFIX}{name}"
    return name


def is_saved_name(name: str) -> bool:
    """Whether `name` points at a saved folder or a Hub repo rather than a registered model."""
    return name.startswith(SAVED_PREFIXES)
