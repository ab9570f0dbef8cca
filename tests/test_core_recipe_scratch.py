"""pretrained=False with a recipe that freezes: refused (random frozen layers) unless the caller chose freeze=."""
import pytest

import zoo


def trainable(model):
    return [name for name, p in model.named_parameters() if p.requires_grad]


def test_pretrained_false_with_a_freezing_recipe_is_refused_saying_what_to_do():
    with pytest.raises(zoo.InvalidArgumentError) as info:
        zoo.create("resnet_ft", num_classes=3, pretrained=False)
    message = str(info.value)
    assert message.startswith("recipe 'resnet_ft' freezes ['conv1', 'bn1', 'layer1', 'layer2', 'layer3', ")
    assert "with pretrained=False those layers would stay random and frozen: only the new head would learn" in message
    assert ("Instead, load its weights (pretrained=True), or pass freeze=False to train every layer from random "
            "initialisation, or pass a freeze= of your own") in message


def test_a_freezing_recipe_on_a_model_without_weights_gives_nothing_up_with_pretrained_false(acme):
    model = zoo.create("acme_ft", num_classes=3, pretrained=False)  # what it does anyway: acme_net_s has no weights
    assert not any(name.startswith("stem.") for name in trainable(model))


def test_freeze_false_trains_every_layer_of_a_recipe_from_scratch(acme):
    model = zoo.create("acme_ft", num_classes=3, pretrained=False, freeze=False)
    assert trainable(model) == [name for name, _ in model.named_parameters()]


def test_a_freeze_of_the_callers_own_is_honoured_with_pretrained_false(acme):
    model = zoo.create("acme_ft", num_classes=3, pretrained=False, freeze="backbone")
    assert trainable(model) == ["classifier.weight", "classifier.bias"]


def test_the_recipe_as_written_still_freezes_what_it_says(acme):
    model = zoo.create("acme_ft", num_classes=3)  # the recipe's own choice, not the caller's pretrained=False
    assert not any(name.startswith("stem.") for name in trainable(model))


def test_freeze_false_means_no_freezing_for_any_model(acme):
    model = zoo.create("acme_net_s", num_classes=3, freeze=False)
    assert trainable(model) == [name for name, _ in model.named_parameters()]
