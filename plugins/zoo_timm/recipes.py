"""Fine-tuning recipes on timm backbones: pretrained weights, a new head of ``num_classes``, a sensible freeze."""
from __future__ import annotations

import zoo

RECIPES = (
    zoo.Recipe(
        name="timm_convnext_ft",
        model="timm/convnext_tiny.in12k_ft_in1k",
        description="ConvNeXt-Tiny from timm, ImageNet-12k pretrained and ImageNet-1k fine-tuned (Apache-2.0), "
                    "a new head of num_classes, the stem and first two stages frozen, stochastic depth 0.1",
        options={"pretrained": True, "freeze": ["stem", "stages.0", "stages.1"], "drop_path_rate": 0.1},
        required=("num_classes",),
    ),
    zoo.Recipe(
        name="timm_vit_ft",
        model="timm/vit_base_patch16_224.augreg2_in21k_ft_in1k",
        description="ViT-B/16 from timm, ImageNet-21k pretrained and ImageNet-1k fine-tuned (Apache-2.0), "
                    "a new head of num_classes, the patch embedding and the first 8 of 12 blocks frozen",
        options={"pretrained": True, "freeze": ["patch_embed", "cls_token", "pos_embed", "blocks.[0-7]"],
                 "drop_path_rate": 0.1},
        required=("num_classes",),
    ),
)
