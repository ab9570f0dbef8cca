"""zoo.create checks a card's head and layer groups against the module it built, naming the plugin and field."""
import pytest

import zoo

PLUGIN = """
import zoo

def card(name, **fields):
    return zoo.ModelCard(name=name, builder="typo_plugin.models:build", task="image-classification",
                         modality="image", defaults={"num_classes": 4}, **fields)

def register(registry):
    registry.register(card("good_net", head="classifier", layer_groups=["stem", "classifier"]))
    registry.register(card("head_typo_net", head="clasifier", layer_groups=["stem", "classifier"]))
    registry.register(card("groups_typo_net", head="classifier", layer_groups=["stem", "stages.0", "classifier"]))
    registry.register(zoo.Recipe(name="head_typo_ft", model="head_typo_net", options={"freeze": "backbone"},
                                 required=("num_classes",)))
"""
MODELS = """
import torch


class Net(torch.nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.stem = torch.nn.Linear(3, 8)
        self.classifier = torch.nn.Linear(8, num_classes)

    def forward(self, x):
        raise AssertionError("creating a model runs no forward pass")


def build(num_classes=4):
    return Net(num_classes)
"""


@pytest.fixture
def typo_plugin(site):
    site("typo-zoo", {"typo": "typo_plugin:register"},
         {"typo_plugin/__init__.py": PLUGIN, "typo_plugin/models.py": MODELS})


def test_a_card_whose_head_is_not_a_module_fails_at_create_naming_plugin_and_field(typo_plugin):
    with pytest.raises(zoo.CardError) as info:
        zoo.create("head_typo_net")
    error = info.value
    assert (error.field, error.plugin) == ("head", "typo")
    assert "model 'head_typo_net' from distribution typo-zoo: field 'head' names 'clasifier'" in str(error)
    assert "top-level modules: 'stem', 'classifier'" in str(error) and "(in plugin 'typo')" in str(error)


def test_a_layer_group_that_is_not_a_module_fails_at_create(typo_plugin):
    with pytest.raises(zoo.CardError, match="field 'layer_groups' names 'stages.0'") as info:
        zoo.create("groups_typo_net", num_classes=2)
    assert (info.value.field, info.value.plugin) == ("layer_groups", "typo")


def test_a_recipe_on_a_broken_card_names_the_plugin_of_the_card_before_freezing_anything(typo_plugin):
    with pytest.raises(zoo.CardError, match="field 'head' names 'clasifier'") as info:
        zoo.create("head_typo_ft", num_classes=2)
    assert info.value.plugin == "typo"


def test_a_card_that_matches_its_module_builds_without_a_forward_pass(typo_plugin):
    model = zoo.create("good_net", num_classes=2, freeze="backbone")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["classifier.weight", "classifier.bias"]
