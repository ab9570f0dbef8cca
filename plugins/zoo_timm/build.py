"""The builder every timm card names: timm's own constructor, never asked for weights (zoo loads them)."""
from __future__ import annotations

from typing import Any

import zoo

from .catalog import INSTALL_HINT


def create_model(model_name: str, **kwargs: Any) -> Any:
    """``timm.create_model(model_name, pretrained=False, **kwargs)``: the architecture, weights left to zoo.

    `kwargs` are timm's model arguments (``num_classes``, ``drop_path_rate``, ``global_pool``, ``in_chans``,
    ``img_size``, ...). Without timm installed this says which extra to install.
    """
    try:
        import timm
    except ModuleNotFoundError as exc:
        if exc.name != "timm":
            raise
        raise zoo.PluginError(f"timm model {model_name!r} needs the timm package, which is not installed: "
                              f"{INSTALL_HINT}") from exc
    for refused in ("pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path"):
        if refused in kwargs:
            raise zoo.InvalidArgumentError(
                f"timm model {model_name!r}: {refused}= is not passed to timm, which would load weights behind "
                "zoo's back; use zoo.create('timm/ARCH.TAG', pretrained=True) or a saved model instead")
    return timm.create_model(model_name, pretrained=False, **kwargs)
