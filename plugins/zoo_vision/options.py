"""Which create-time options each torchvision family honours, and how (card data, no torch).

Each family maps `zoo.create`'s architecture options to a spec (see `zoo.create_options`): a builder keyword
torchvision takes (``dropout``, ``stochastic_depth_prob``, ``image_size``), or the modules zoo changes after
the build (the first convolution for ``in_chans``, the global pooling for ``global_pool``, the stochastic depth
layers where the builder fixes their rate). An option a family cannot honour is left out, and zoo refuses it
for that family's models:

- ``drop_rate``: none for ResNet, ResNeXt, Wide ResNet, RegNet, ShuffleNet (they have no dropout).
- ``drop_path_rate``: only the families with stochastic depth (EfficientNet, ConvNeXt, Swin, MaxViT).
- ``global_pool``: only where the pooling is a module (not DenseNet, MobileNet v2, ShuffleNet, MNASNet, whose
  forward pools with a function; nor VGG, AlexNet, SqueezeNet, ViT, which do not pool globally before the
  head); ``""`` (unpooled) only where the head reads the flattened pooling directly.
- ``in_chans``: not GoogLeNet and Inception v3, whose pretrained input transform expects RGB.
- ``img_size``: ViT (its position embeddings are resampled to the new patch grid).
"""
from __future__ import annotations

import re
from typing import Any

_POOLED = ["avg", "max", "avgmax"]  # global_pool values where a layer between pooling and head needs the pooled width

_RESNET: dict[str, Any] = {"global_pool": {"module": "avgpool"}, "in_chans": {"module": "conv1"}}
_EFFICIENTNET: dict[str, Any] = {
    "drop_rate": {"keyword": "dropout"}, "drop_path_rate": {"keyword": "stochastic_depth_prob"},
    "global_pool": {"module": "avgpool"}, "in_chans": {"module": "features.0.0"},
}
_SWIN: dict[str, Any] = {
    "drop_rate": {"keyword": "dropout"}, "drop_path_rate": {"modules": ["features.*.*.stochastic_depth"]},
    "global_pool": {"module": "avgpool"}, "in_chans": {"module": "features.0.0"},
}
_CLASSIFIER_DROPOUT: dict[str, Any] = {"drop_rate": {"keyword": "dropout"}, "in_chans": {"module": "features.0"}}

FAMILY_OPTIONS: dict[str, dict[str, Any]] = {
    "resnet": _RESNET,
    "resnext": _RESNET,
    "wide_resnet": _RESNET,
    "regnet": {"global_pool": {"module": "avgpool"}, "in_chans": {"module": "stem.0"}},
    "efficientnet": _EFFICIENTNET,
    "efficientnet_v2": _EFFICIENTNET,
    "mobilenet_v2": {"drop_rate": {"keyword": "dropout"}, "in_chans": {"module": "features.0.0"}},
    "mobilenet_v3": {"drop_rate": {"keyword": "dropout"}, "global_pool": {"module": "avgpool", "values": _POOLED},
                     "in_chans": {"module": "features.0.0"}},
    "convnext": {"drop_path_rate": {"keyword": "stochastic_depth_prob"}, "global_pool": {"module": "avgpool"},
                 "in_chans": {"module": "features.0.0"}},
    "vit": {"drop_rate": {"keyword": "dropout"}, "in_chans": {"module": "conv_proj"}},  # + img_size per model
    "swin": _SWIN,
    "swin_v2": _SWIN,
    "maxvit": {"drop_rate": {"keyword": "mlp_dropout"},
               "drop_path_rate": {"modules": ["blocks.*.layers.*.layers.*.stochastic_d*"]},
               "global_pool": {"module": "classifier.0", "values": _POOLED}, "in_chans": {"module": "stem.0.0"}},
    "densenet": {"drop_rate": {"keyword": "drop_rate"}, "in_chans": {"module": "features.conv0"}},
    "vgg": _CLASSIFIER_DROPOUT,
    "alexnet": _CLASSIFIER_DROPOUT,
    "squeezenet": _CLASSIFIER_DROPOUT,
    "shufflenet_v2": {"in_chans": {"module": "conv1.0"}},
    "mnasnet": {"drop_rate": {"keyword": "dropout"}, "in_chans": {"module": "layers.0"}},
    "googlenet": {"drop_rate": {"keyword": "dropout"}, "global_pool": {"module": "avgpool"}},
    "inception_v3": {"drop_rate": {"keyword": "dropout"}, "global_pool": {"module": "avgpool"}},
}

_VIT_PATCH = re.compile(r"^vit_[a-z]+_(\d+)")


def create_options(name: str, family: str | None) -> dict[str, Any]:
    """The ``create_options`` card field of catalogue model `name` of `family` (empty for unknown families)."""
    options = {option: dict(spec) for option, spec in FAMILY_OPTIONS.get(family or "", {}).items()}
    patch = _VIT_PATCH.match(name) if family == "vit" else None
    if patch:
        options["img_size"] = {"keyword": "image_size", "position_embedding": "encoder.pos_embedding",
                               "prefix_tokens": 1, "patch_size": int(patch.group(1))}
    return options
