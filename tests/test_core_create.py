import pytest
import torch

import zoo


def test_create_uses_defaults_and_overrides(acme):
    model = zoo.create("acme_net_s")
    assert model.classifier.out_features == 10 and model.stem[0].out_channels == 16
    wider = zoo.create("acme_net_s", width=24, num_classes=3)
    assert wider.stem[0].out_channels == 24 and wider(torch.randn(2, 3, 64, 64)).shape == (2, 3)


def test_created_module_keeps_its_card(acme):
    model = zoo.create("acme_net_m", num_classes=7)
    card = zoo.card_of(model)
    assert card.name == "acme_net_m" and card.head == "classifier" and card.num_classes == 7
    assert card.defaults["width"] == 32
    assert "zoo_card" not in model.state_dict()


def test_unknown_keyword_is_rejected_clearly(acme):
    with pytest.raises(zoo.InvalidArgumentError, match="'depth'.*width"):
        zoo.create("acme_net_s", depth=3)


def test_recipe_requires_num_classes(acme):
    with pytest.raises(zoo.InvalidArgumentError, match=r"needs num_classes"):
        zoo.create("acme_ft")


def test_recipe_applies_its_options(acme):
    model = zoo.create("acme_ft", num_classes=4)
    assert zoo.card_of(model).recipe.name == "acme_ft"
    assert model.classifier.out_features == 4
    assert not any(p.requires_grad for p in model.stem.parameters())  # freeze=1: the stem group
    assert all(p.requires_grad for p in model.classifier.parameters())


def test_unknown_name_suggests(acme):
    with pytest.raises(zoo.UnknownModelError, match="acme_net_s"):
        zoo.create("acme_nett_s")


def test_pretrained_without_weights_says_what_to_do(acme):
    with pytest.raises(zoo.ZooError, match="no pretrained weights"):
        zoo.create("acme_net_s", pretrained=True)


def test_builder_import_failure_names_the_model(site):
    site("ghost-zoo", {"ghost": "ghost_plugin:register"}, {"ghost_plugin/__init__.py": """
        import zoo
        def register(registry):
            registry.register(zoo.ModelCard(name="ghost_net", builder="ghost_plugin.missing:build",
                                            task="image-classification", modality="image"))
        """})
    with pytest.raises(zoo.PluginError, match="ghost_net"):
        zoo.create("ghost_net")
