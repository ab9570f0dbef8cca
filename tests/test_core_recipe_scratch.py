"""pretrained=False with a recipe that freezes: refused (random frozen layers) unless the caller chose freeze=."""
import pytest

import zoo


def trainable(model):
    return [name for name, p in model.named_parameters() if p.requires_grad]


def test_pretrained_false_with_a_freezing_recipe_is_refused_saying_what_to_do(acme):
    with pytest.raises(zoo.InvalidArgumentError) as info:
        zoo.create("acme_ft", num_classes=3, pretrained=False)
    message = str(info.value)
    assert message.startswith("recipe 'acme_ft' freezes 1, and with pretrained=False those layers would stay random")
    assert "pass freeze=False to train every layer from random initialisation" in message
    assert "pretrained=True" not in message  # acme_net_s has no weights to offer


def test_the_refusal_offers_the_weights_when_the_model_has_them():
    with pytest.raises(zoo.InvalidArgumentError, match=r"load its weights \(pretrained=True\), or pass freeze=False"):
        zoo.create("resnet_ft", num_classes=3, pretrained=False)


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
