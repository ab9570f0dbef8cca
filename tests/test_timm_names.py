"""Namespaced names (``timm/<arch>.<tag>``): what a card name may be, and names that are also folders."""
import pytest

import zoo
from zoo import ModelCard, Registry, WeightsCard
from zoo.names import model_source


def card(name, **fields):
    return ModelCard(name=name, builder="m:f", task="image-classification", modality="image", **fields)


def test_one_lowercase_namespace_is_allowed_before_the_name():
    reg = Registry()
    weights = {"a1_in1k": WeightsCard(source="hf-hub:timm/resnet50.a1_in1k", num_classes=1000)}
    reg.register(card("timm/resnet50", weights=weights, default_weights="a1_in1k"))
    reg.register(card("resnet50"))
    assert reg.resolve("timm/resnet50.a1_in1k").tag == "a1_in1k"
    assert reg.get_card("timm/resnet50").name == "timm/resnet50"
    assert "timm/resnet50.a1_in1k" in reg and "timm/resnet50.other" not in reg
    assert reg.list_models("timm/*") == ["timm/resnet50"]
    assert reg.list_models("timm/*", pretrained=True) == ["timm/resnet50", "timm/resnet50.a1_in1k"]
    assert reg.list_models("resnet*") == ["resnet50"]  # no collision with the plain name


@pytest.mark.parametrize("name", ["Timm/resnet50", "a/b/resnet50", "/resnet50", "timm/", "timm/9lives",
                                  "ti mm/resnet50", "timm/resnet50/x", "timm.x/resnet50"])
def test_malformed_namespaced_names_are_refused_with_the_rule(name):
    with pytest.raises(zoo.CardError, match="namespace such as 'timm/'"):
        card(name)


def test_a_registered_name_wins_over_a_folder_of_the_same_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    zoo.default_registry().register(card("acmens/net_a"))
    (tmp_path / "acmens" / "net_a").mkdir(parents=True)
    (tmp_path / "my-model").mkdir()
    assert model_source("acmens/net_a") == "acmens/net_a"
    assert model_source("./acmens/net_a") == "local-dir:./acmens/net_a"
    assert model_source("my-model") == "local-dir:my-model"
    assert model_source("acmens/missing") == "acmens/missing"  # no folder: left for the registry to judge
    assert model_source("local-dir:acmens/net_a") == "local-dir:acmens/net_a"
