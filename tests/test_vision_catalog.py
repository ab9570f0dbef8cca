"""The image catalogue: every torchvision classification model and weights entry, listed without torch."""
from __future__ import annotations

import json
import re

import pytest
import torchvision.models as tv
from conftest import run_python

import zoo
from zoo.errors import InvalidArgumentError
from zoo_vision import generate
from zoo_vision.catalog import CATALOG, model_cards


def all_tv_weights():
    for builder in tv.list_models(module=tv):
        for weights in tv.get_model_weights(builder):
            yield builder, weights


def test_catalog_file_is_up_to_date_with_installed_torchvision():
    reason = generate.stale_reason(CATALOG)
    assert reason is None, reason


def test_stale_catalog_is_detected(tmp_path):
    data = json.loads(CATALOG.read_text())
    data["cards"] = [c for c in data["cards"] if c["name"] != "resnet50"]
    stale = tmp_path / "catalog.json"
    stale.write_text(json.dumps(data))
    reason = generate.stale_reason(stale)
    assert reason is not None and "resnet50" in reason and "python -m zoo_vision.generate" in reason


def test_every_torchvision_classification_builder_is_listed_with_weights():
    listed = set(zoo.list_models(modality="image", task="image-classification"))
    assert set(tv.list_models(module=tv)) <= listed
    pretrained = set(zoo.list_models(modality="image", pretrained=True))
    for builder, weights in all_tv_weights():
        tag = weights.name.lower()
        assert any(name.endswith(f".{tag}") and name.split(".")[0].startswith(builder) for name in pretrained), \
            f"{builder} {weights.name} has no weights card"


def _card_holding(builder: str, tag: str) -> zoo.ModelCard:
    cards = [c for c in model_cards() if c.extra.get("torchvision_builder") == builder and tag in c.weights]
    assert len(cards) == 1, f"{builder}.{tag} is on {len(cards)} cards"
    return cards[0]


def test_one_weights_card_per_torchvision_entry_with_its_metadata():
    count = 0
    for builder, weights in all_tv_weights():
        card = _card_holding(builder, weights.name.lower())
        w = card.weights[weights.name.lower()]
        count += 1
        assert w.source == weights.url
        assert re.search(rf"-{w.sha256}\.pth$", weights.url)
        categories = weights.meta["categories"]
        assert w.labels == (tuple(categories) if categories else None)
        assert w.num_classes == (len(categories) if categories else 1000)
        assert w.num_params == weights.meta["num_params"]
        assert w.metrics.get("acc@1") == pytest.approx(weights.meta["_metrics"]["ImageNet-1K"]["acc@1"], nan_ok=True) \
            or categories is None
        assert w.license == ("CC-BY-NC-4.0" if "SWAG" in weights.name else "BSD-3-Clause")
        preset = weights.transforms()
        assert (w.input.size, w.input.resize_size) == (preset.crop_size[0], preset.resize_size[0])
        assert list(w.input.mean) == pytest.approx(preset.mean) and list(w.input.std) == pytest.approx(preset.std)
        assert w.input.interpolation == preset.interpolation.value
    assert count == sum(len(c.weights) for c in model_cards())


def test_default_weights_follow_torchvision_default():
    for builder in tv.list_models(module=tv):
        default = tv.get_model_weights(builder).DEFAULT
        card = _card_holding(builder, default.name.lower())
        assert card.default_weights == default.name.lower()
        assert card.input == card.weights[card.default_weights].input


def test_label_lists_are_stored_once_and_shared():
    data = json.loads(CATALOG.read_text())
    assert list(data["labels"]) == ["imagenet-1k"] and len(data["labels"]["imagenet-1k"]) == 1000
    cards = model_cards()
    labels = {id(w.labels) for c in cards for w in c.weights.values() if w.labels}
    assert len(labels) == 1
    assert zoo.get_card("resnet50.imagenet1k_v2").weights["imagenet1k_v2"].labels[:2] == ("tench", "goldfish")


def test_vit_weights_needing_a_larger_input_have_their_own_card():
    card = zoo.get_card("vit_b_16_384")
    assert card.defaults == {"image_size": 384} and card.input.size == 384
    assert list(card.weights) == ["imagenet1k_swag_e2e_v1"]
    assert set(zoo.get_card("vit_b_16").weights) == {"imagenet1k_v1", "imagenet1k_swag_linear_v1"}


def test_aux_head_models_default_to_plain_logits_and_drop_aux_weights():
    from zoo_vision.keymaps import drop_aux_heads

    for name in ("googlenet", "inception_v3"):
        card = zoo.get_card(name)
        assert card.defaults["aux_logits"] is False and card.defaults["transform_input"] is True
        assert card.weights["imagenet1k_v1"].key_map == "zoo_vision.keymaps:drop_aux_heads"
    state = {"fc.weight": 1, "AuxLogits.fc.weight": 2, "aux1.conv.weight": 3, "aux2.fc2.bias": 4}
    assert drop_aux_heads(state) == {"fc.weight": 1}


def test_listing_and_cards_do_not_import_torch():
    result = run_python("""
        import sys, zoo
        names = zoo.list_models(modality="image", pretrained=True)
        card = zoo.get_card("resnet_ft")
        assert "resnet50.imagenet1k_v2" in names and card.recipe.required == ("num_classes",)
        print("torch" in sys.modules, "torchvision" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_fine_tune_recipes_resolve_to_pretrained_backbones():
    for recipe, base in [("resnet_ft", "resnet50"), ("vit_ft", "vit_b_16"), ("efficientnet_ft", "efficientnet_v2_s"),
                         ("convnext_ft", "convnext_tiny"), ("mobilenet_ft", "mobilenet_v3_large")]:
        card = zoo.get_card(recipe)
        assert card.recipe.model.split(".")[0] == base
        assert card.default_weights in card.weights and card.recipe.options["pretrained"] is True
        assert card.recipe.required == ("num_classes",)
    assert zoo.get_card("resnet_ft").default_weights == "imagenet1k_v2"


def test_resnet_ft_without_num_classes_says_what_to_pass():
    with pytest.raises(InvalidArgumentError, match=r"num_classes.*zoo.create\('resnet_ft', num_classes=\.\.\.\)"):
        zoo.create("resnet_ft")


def test_cli_lists_the_catalogue(capsys):
    from zoo.cli import main

    assert main(["list", "--modality", "image", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["resnet50"]["weights"] == ["imagenet1k_v1", "imagenet1k_v2"]
    assert rows["resnet_ft"]["recipe_of"] == "resnet50.imagenet1k_v2"
    assert len([n for n, r in rows.items() if r["family"] and not r["recipe_of"]]) >= 80
