"""Import the object a ``"package.module:attr"`` string names (builders, plugins, key maps)."""
from __future__ import annotations

import importlib
from typing import Any


def import_object(spec: str) -> Any:
    """Import ``"package.module:attr.path"``; raises ImportError or AttributeError as Python does."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name.strip())
    for part in attr.strip().split(".") if attr.strip() else []:
        obj = getattr(obj, part)
    return obj
