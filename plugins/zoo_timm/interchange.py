"""What timm reads in a saved folder's config.json, written beside zoo's keys by `zoo.save_pretrained`.

With these keys (``architecture``, ``num_classes``, ``num_features``, ``pretrained_cfg``, ``label_names`` and
``model_args``), ``timm.create_model("local-dir:DIR")`` or ``"hf-hub:org/repo"`` builds the saved model and
loads its ``model.safetensors``, as it does for folders timm writes itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import zoo

# Builder keywords that are zoo's or timm's bookkeeping, not architecture arguments.
_NOT_MODEL_ARGS = ("model_name", "num_classes")


def timm_config(card: zoo.ModelCard, labels: Sequence[str] | None) -> dict[str, Any]:
    """timm's config keys for a model built from a ``timm/<arch>`` card."""
    num_classes = card.class_count()
    spec = card.input
    pretrained_cfg: dict[str, Any] = {"num_classes": num_classes}
    if isinstance(spec, zoo.ImageInput):
        pretrained_cfg.update({
            "input_size": [3, spec.size, spec.size],
            "interpolation": spec.interpolation,
            "mean": list(spec.mean),
            "std": list(spec.std),
            "crop_pct": round(spec.size / spec.resize_size, 4) if spec.resize_size else 1.0,
            "crop_mode": "center",
        })
    if card.head:
        pretrained_cfg["classifier"] = card.head
    first_conv = card.create_options.get("in_chans", {}).get("weight")
    if isinstance(first_conv, str):
        pretrained_cfg["first_conv"] = first_conv.removesuffix(".weight")
    config: dict[str, Any] = {
        "architecture": card.defaults["model_name"],
        "num_classes": num_classes,
        "num_features": card.num_features,
        "pretrained_cfg": pretrained_cfg,
        "model_args": {k: v for k, v in card.defaults.items() if k not in _NOT_MODEL_ARGS},
    }
    if labels:
        config["label_names"] = list(labels)
    return config
