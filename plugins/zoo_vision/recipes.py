"""Fine-tuning recipes: a pretrained backbone, a new head of ``num_classes``, a sensible freeze."""
from __future__ import annotations

import zoo

RECIPES = (
    zoo.Recipe(
        name="resnet_ft",
        model="resnet50.imagenet1k_v2",
        description="ResNet-50 with its best ImageNet weights (torchvision IMAGENET1K_V2), a new head of num_classes, "
                    "the backbone frozen except the last stage (layer4) and every BatchNorm frozen",
        # layer4's convolutions and the head train; layer4's BatchNorm layers are listed so that
        # their statistics and affine parameters stay fixed too.
        options={"pretrained": True,
                 "freeze": ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4.*.bn*", "layer4.*.downsample.1"]},
        required=("num_classes",),
    ),
    zoo.Recipe(
        name="vit_ft",
        model="vit_b_16.imagenet1k_v1",
        description="ViT-B/16 with its BSD-licensed ImageNet weights, a new head of num_classes, "
                    "the patch embedding and the first 10 of 12 encoder blocks frozen",
        options={"pretrained": True,
                 "freeze": ["conv_proj", "class_token", "encoder.pos_embedding", "encoder.layers.encoder_layer_[0-9]"]},
        required=("num_classes",),
    ),
    zoo.Recipe(
        name="efficientnet_ft",
        model="efficientnet_v2_s.imagenet1k_v1",
        description="EfficientNetV2-S with ImageNet weights, a new head of num_classes, "
                    "all but the last stage and the final 1x1 convolution frozen",
        options={"pretrained": True, "freeze": "features.[0-5]"},
        required=("num_classes",),
    ),
    zoo.Recipe(
        name="convnext_ft",
        model="convnext_tiny.imagenet1k_v1",
        description="ConvNeXt-Tiny with ImageNet weights, a new head of num_classes, "
                    "all but the last stage frozen",
        options={"pretrained": True, "freeze": "features.[0-6]"},
        required=("num_classes",),
    ),
    zoo.Recipe(
        name="mobilenet_ft",
        model="mobilenet_v3_large.imagenet1k_v2",
        description="MobileNetV3-Large with ImageNet weights for small devices: a new head of "
                    "num_classes, the convolutional features frozen, the two-layer classifier trained",
        options={"pretrained": True, "freeze": "features"},
        required=("num_classes",),
    ),
)
