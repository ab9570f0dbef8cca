"""Registers the Acme family. zoo imports this module to list models, so it imports no torch."""
import zoo

_LAYER_GROUPS = ["stem", "stages.0", "stages.1", "classifier"]
_INPUT = zoo.ImageInput(size=64, resize_size=72)
# zoo.create(name, global_pool="max", in_chans=1): zoo replaces the pooling layer and the first convolution.
_CREATE_OPTIONS = {"global_pool": {"module": "pool.0"}, "in_chans": {"module": "stem.0"}}


def _feature_stages(width: int) -> list[dict[str, object]]:
    """The maps `zoo.create(name, features_only=True)` returns: each stride-2 block's output."""
    return [{"module": "stem", "channels": width, "reduction": 2},
            {"module": "stages.0", "channels": width, "reduction": 4},
            {"module": "stages.1", "channels": width * 2, "reduction": 8}]


def register(registry: zoo.Registrar) -> None:
    """Called once by zoo with a registrar that only registers (zoo plugin API 1, docs/plugins.md)."""
    for width, size in ((16, "s"), (32, "m")):
        registry.register(zoo.ModelCard(
            name=f"acme_net_{size}",
            builder="acme_zoo.models:build_acme_net",
            task="image-classification",
            modality="image",
            family="acme",
            description=f"Acme conv net, width {width}: two stages of 3x3 convs with BatchNorm",
            defaults={"width": width, "num_classes": 10},
            input=_INPUT,
            head="classifier",
            layer_groups=_LAYER_GROUPS,
            num_features=width * 2,
            feature_stages=_feature_stages(width),
            create_options=_CREATE_OPTIONS,
        ))
    registry.register(zoo.Recipe(
        name="acme_ft",
        model="acme_net_s",
        description="acme_net_s with a new head of num_classes and its stem frozen",
        options={"freeze": 1},
        required=("num_classes",),
    ))
