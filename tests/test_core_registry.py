import pytest

import zoo
from zoo import ModelCard, Recipe, Registry, WeightsCard


def make_registry():
    reg = Registry()
    w = {"in1k": WeightsCard(source="https://x/a-0123abcd.pth", num_classes=3, labels=["a", "b", "c"]),
         "in21k": WeightsCard(source="https://x/b-0123abcd.pth", num_classes=5)}
    reg.register(ModelCard(name="resnet_tiny", builder="m:f", task="image-classification", modality="image",
                           family="resnet", weights=w, default_weights="in1k", aliases=["rn_tiny"]))
    reg.register(ModelCard(name="resnet_wide", builder="m:f", task="image-classification", modality="image",
                           family="resnet"))
    reg.register(ModelCard(name="bert_tiny", builder="m:g", task="feature-extraction", modality="text",
                           family="bert"))
    reg.register(Recipe(name="resnet_tiny_ft", model="resnet_tiny.in21k", options={"pretrained": True, "freeze": -1},
                        required=("num_classes",)))
    reg.register(Recipe(name="resnet_deep_ft", model="resnet_tiny_ft", options={"freeze": 2}))
    return reg


def test_list_models_sorted_with_wildcard_and_filters():
    reg = make_registry()
    assert reg.list_models() == ["bert_tiny", "resnet_deep_ft", "resnet_tiny", "resnet_tiny_ft", "resnet_wide"]
    assert reg.list_models("resnet_t*") == ["resnet_tiny", "resnet_tiny_ft"]
    assert reg.list_models(modality="text") == ["bert_tiny"]
    assert reg.list_models(task="image-classification", family="resnet", pretrained=True) == [
        "resnet_deep_ft", "resnet_tiny", "resnet_tiny.in1k", "resnet_tiny.in21k", "resnet_tiny_ft"]
    assert reg.list_models("*.in21k", pretrained=True) == ["resnet_tiny.in21k"]


def test_tags_aliases_and_recipes_resolve():
    reg = make_registry()
    assert reg.resolve("resnet_tiny.in21k").tag == "in21k"
    assert reg.get_card("resnet_tiny.in21k").default_weights == "in21k"
    assert reg.get_card("rn_tiny").name == "resnet_tiny"
    r = reg.resolve("resnet_tiny_ft")
    assert r.card.name == "resnet_tiny_ft" and r.card.recipe.model == "resnet_tiny.in21k"
    assert r.tag == "in21k" and r.options == {"pretrained": True, "freeze": -1} and r.required == ("num_classes",)
    nested = reg.resolve("resnet_deep_ft")  # a recipe of a recipe: outer options win
    assert nested.options == {"pretrained": True, "freeze": 2} and nested.tag == "in21k"
    assert nested.required == ("num_classes",)


def test_unknown_name_lists_closest_names():
    reg = make_registry()
    with pytest.raises(zoo.UnknownModelError) as info:
        reg.resolve("resnet_tin")
    assert "resnet_tiny" in info.value.suggestions and "resnet_tiny" in str(info.value)
    with pytest.raises(zoo.UnknownWeightsError, match="in1k, in21k"):
        reg.resolve("resnet_tiny.in22k")


def test_name_registered_twice_by_one_plugin_is_an_error():
    reg = make_registry()
    with pytest.raises(zoo.CardError, match="registered twice"):
        reg.register(ModelCard(name="bert_tiny", builder="m:g", task="feature-extraction", modality="text"))


def test_register_rejects_other_objects():
    with pytest.raises(zoo.CardError, match="zoo.ModelCard"):
        Registry().register({"name": "x"})


def test_recipe_loop_is_reported():
    reg = Registry()
    reg.register(Recipe(name="a", model="b"))
    reg.register(Recipe(name="b", model="a"))
    with pytest.raises(zoo.CardError, match="loop"):
        reg.resolve("a")


def test_membership_answers_for_every_name_without_raising():
    reg = make_registry()
    reg.register(Recipe(name="loop_a", model="loop_b"))
    reg.register(Recipe(name="loop_b", model="loop_a"))
    reg.register(Recipe(name="dangling_ft", model="no_such_net"))
    answers = {name: name in reg for name in (
        "resnet_tiny", "rn_tiny", "resnet_tiny.in21k", "resnet_tiny_ft", "resnet_tiny_ft.in1k",
        "loop_a", "dangling_ft",  # registered, though looking them up fails
        "resnet_tiny.in22k", "resnet_tiny_ft.in22k", "no_such_net", "", None, 5)}
    assert [name for name, found in answers.items() if found] == [
        "resnet_tiny", "rn_tiny", "resnet_tiny.in21k", "resnet_tiny_ft", "resnet_tiny_ft.in1k", "loop_a", "dangling_ft"]
    with pytest.raises(zoo.CardError, match="loop"):  # the lookup still says what is wrong
        reg.resolve("loop_a")
    with pytest.raises(zoo.UnknownModelError, match="recipe 'dangling_ft'.*'no_such_net'"):
        reg.resolve("dangling_ft")


def test_names_and_listings_sort_numbers_by_value():
    reg = Registry()
    weights = {tag: WeightsCard(source=f"https://x/{tag}-0123abcd.pth") for tag in ("in1k", "in21k", "in12k")}
    for name in ("resnet101", "resnet18", "resnet_tiny", "resnet34", "vit_b_32", "vit_b_16", "efficientnet_b10",
                 "efficientnet_b2"):
        reg.register(ModelCard(name=name, builder="m:f", task="image-classification", modality="image",
                               weights=weights if name == "resnet18" else {}))
    assert reg.names() == ["efficientnet_b2", "efficientnet_b10", "resnet18", "resnet34", "resnet101", "resnet_tiny",
                           "vit_b_16", "vit_b_32"]
    assert reg.list_models("resnet*") == ["resnet18", "resnet34", "resnet101", "resnet_tiny"]
    assert reg.list_models(pretrained=True) == ["resnet18", "resnet18.in1k", "resnet18.in12k", "resnet18.in21k"]
