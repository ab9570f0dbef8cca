import json

import pytest

import zoo
from zoo import ImageInput, ModelCard, Recipe, WeightsCard


def card(**overrides):
    fields = dict(name="net_a", builder="pkg.models:build", task="image-classification", modality="image")
    return ModelCard(**{**fields, **overrides})


@pytest.mark.parametrize("field,value,needle", [
    ("name", "has.dot", "'name'"),
    ("name", "", "'name'"),
    ("builder", "pkg.models.build", "'builder'"),
    ("task", "Image Classification", "'task'"),
    ("modality", "video", "'modality'"),
    ("layer_groups", "stem", "'layer_groups'"),
    ("head", 3, "'head'"),
    ("default_weights", "missing", "'default_weights'"),
    ("weights", {"bad tag": {"source": "x"}}, "'weights'"),
    ("defaults", [1], "'defaults'"),
])
def test_malformed_fields_are_rejected_naming_the_field(field, value, needle):
    with pytest.raises(zoo.CardError) as info:
        card(**{field: value})
    assert needle in str(info.value)
    assert info.value.field == field


def test_missing_required_field_is_named():
    with pytest.raises(zoo.CardError, match=r"missing required field\(s\) \['modality'\]"):
        ModelCard.from_dict({"name": "x", "builder": "a:b", "task": "image-classification"})


def test_weights_card_validation():
    with pytest.raises(zoo.CardError, match="sha256"):
        WeightsCard(source="https://example.org/w.pth", sha256="XYZ")
    with pytest.raises(zoo.CardError, match="labels"):
        WeightsCard(source="local.safetensors", num_classes=3, labels=["a", "b"])
    with pytest.raises(zoo.CardError, match="'size'"):
        ImageInput(size=-1)
    with pytest.raises(zoo.CardError, match="mean"):
        ImageInput(size=224, mean=(0.5, 0.5))


def test_input_and_weights_given_as_plain_mappings_become_typed():
    c = card(input={"size": 64, "resize_size": 72},
             weights={"v1": {"source": "hf-hub:org/repo", "filename": "model.safetensors", "num_classes": 2,
                             "labels": ["cat", "dog"], "input": {"kind": "image", "size": 96}}},
             default_weights="v1")
    assert isinstance(c.input, ImageInput) and c.input.size == 64
    assert isinstance(c.weights["v1"], WeightsCard)
    assert c.input_for("v1").size == 96 and c.input_for(None).size == 96
    assert c.class_count() == 2 and c.has_weights
    with pytest.warns(DeprecationWarning, match="has_weights"):
        assert c.pretrained
    with pytest.warns(DeprecationWarning, match="class_count"):
        assert c.classes() == 2


def test_cards_round_trip_through_json():
    c = card(family="f", description="d", defaults={"width": 8}, input=ImageInput(size=32), head="fc",
             layer_groups=["stem", "fc"], num_features=8, aliases=["net_alias"], extra={"k": [1, 2]},
             weights={"v1": WeightsCard(source="https://x/y-0123abcd.pth", sha256="0123abcd", metrics={"acc@1": 1.0})},
             default_weights="v1", recipe=Recipe(name="net_ft", model="net_a.v1", options={"freeze": 1},
                                                 required=("num_classes",)))
    again = ModelCard.from_dict(json.loads(json.dumps(c.to_dict())))
    assert again == c


def test_unknown_field_in_dict_is_named():
    with pytest.raises(zoo.CardError, match="unknown field"):
        ModelCard.from_dict({"name": "x", "builder": "a:b", "task": "t", "modality": "image", "colour": 1})
