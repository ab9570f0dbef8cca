"""The timm catalogue: generated from the installed timm, current with it, listed without torch or timm."""
import json

import pytest
from conftest import run_python

import zoo
from zoo.cards import CardSummary

timm = pytest.importorskip("timm")
from timm.models import get_pretrained_cfg  # noqa: E402

from zoo_timm import generate  # noqa: E402
from zoo_timm.catalog import CATALOG, INDEX_NAME, index, load_catalog, model_cards  # noqa: E402


def test_catalog_file_is_current_with_the_installed_timm():
    reason = generate.stale_reason(CATALOG)
    assert reason is None, reason


def test_a_catalogue_from_another_timm_version_or_missing_architectures_is_stale(tmp_path):
    data = json.loads(CATALOG.read_text())
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**data, "timm": "0.9.0"}))
    assert "timm 0.9.0" in generate.stale_reason(old) and "python -m zoo_timm.generate" in generate.stale_reason(old)
    short = tmp_path / "short.json"
    short.write_text(json.dumps({**data, "cards": [c for c in data["cards"] if c["arch"] != "test_resnet"]}))
    assert "test_resnet" in generate.stale_reason(short)


def check_card_against_timm(card: zoo.ModelCard) -> None:
    arch = card.name.removeprefix("timm/")
    assert card.builder == "zoo_timm.build:create_model" and card.defaults["model_name"] == arch
    default = get_pretrained_cfg(arch)
    if card.default_weights is not None and default.tag in card.weights:
        assert card.default_weights == default.tag
    for tag, weights in card.weights.items():
        cfg = get_pretrained_cfg(f"{arch}.{tag}")
        assert weights.source == f"hf-hub:{cfg.hf_hub_id}" and weights.sha256 is None
        assert weights.num_classes == (cfg.num_classes or None)
        assert weights.license == (generate.SPDX.get(cfg.license, cfg.license) if cfg.license != "unknown" else None)
        spec = card.input_for(tag)
        if cfg.input_size[1] == cfg.input_size[2]:
            assert spec.size == cfg.input_size[1] and spec.interpolation == cfg.interpolation
            assert list(spec.mean) == pytest.approx(cfg.mean) and list(spec.std) == pytest.approx(cfg.std)
            assert (spec.resize_size or spec.size) == int(cfg.input_size[1] // (cfg.crop_pct or 1.0)) or \
                abs((spec.resize_size or spec.size) - cfg.input_size[1] / cfg.crop_pct) < 1
        if weights.labels is not None:
            assert len(weights.labels) == weights.num_classes
    classifier = default.classifier[0] if isinstance(default.classifier, (list, tuple)) else default.classifier
    assert card.head in (classifier, None)


def test_a_sample_of_cards_matches_timms_pretrained_configs():
    cards = model_cards()
    sample = [c for c in cards if c.name.startswith("timm/test_")] + cards[::97]
    for card in sample:
        check_card_against_timm(card)
    assert zoo.get_card("timm/convnext_tiny.fb_in22k_ft_in1k").default_weights == "fb_in22k_ft_in1k"


def test_label_lists_are_stored_once_and_shared():
    data = load_catalog()
    assert "imagenet-1k" in data["labels"] and len(data["labels"]["imagenet-1k"]) == 1000
    labels = {id(w.labels) for c in model_cards() for w in c.weights.values() if w.labels and len(w.labels) == 1000}
    assert len(labels) == 1


def test_cards_carry_stages_options_and_groups_for_the_test_models():
    vit = zoo.get_card("timm/test_vit")
    assert vit.feature_stages[0].layout == "NLC" and vit.feature_stages[0].prefix_tokens == 1
    assert vit.create_options["img_size"] == {"keyword": "img_size", "position_embedding": "pos_embed",
                                              "prefix_tokens": 1, "patch_size": 16}
    resnet = zoo.get_card("timm/test_resnet")
    assert [s.reduction for s in resnet.feature_stages] == [2, 4, 8, 16, 32]
    assert resnet.create_options["in_chans"]["weight"].endswith(".weight")
    assert {"drop_rate", "drop_path_rate", "global_pool"} <= set(resnet.create_options)
    assert resnet.layer_groups[-1] == "fc" and resnet.num_features == 96


def test_listing_the_family_imports_neither_torch_nor_timm():
    result = run_python("""
        import sys, zoo
        names = zoo.list_models("timm/*", pretrained=True)
        card = zoo.get_card("timm/test_vit.r160_in1k")
        assert "timm/test_resnet.r160_in1k" in names and card.default_weights == "r160_in1k"
        print(len(names), "torch" in sys.modules, "timm" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    count, torch_loaded, timm_loaded = result.stdout.split()
    assert int(count) > 20 and (torch_loaded, timm_loaded) == ("False", "False")


@pytest.mark.slow
def test_every_card_matches_timm_and_builds_as_its_card_says():
    """The full sweep: each card's weights against timm's configs, and its module tree (built on meta)."""
    import torch

    data = load_catalog()
    listed = {c["arch"] for c in data["cards"]} | set(data["left_out"]["architectures"])
    assert listed == set(timm.list_models())
    for card in model_cards():
        check_card_against_timm(card)
        with torch.device("meta"):
            model = timm.create_model(card.defaults["model_name"])
        modules = dict(model.named_modules())
        assert all(group in modules for group in card.layer_groups), card.name
        assert all(stage.module in modules for stage in card.feature_stages), card.name
        assert card.head is None or card.head in modules, card.name


def test_the_listing_index_is_current_with_the_catalogue():
    """index.json is what `python -m zoo_timm.generate --index-only` writes from catalog.json as it is."""
    index_path = CATALOG.with_name(INDEX_NAME)
    assert index_path.read_text(encoding="utf-8") == generate.render_index(CATALOG.read_text(encoding="utf-8")), \
        "index.json is stale; run: python -m zoo_timm.generate --index-only"


def test_the_index_lists_what_the_cards_say():
    listed = {entry["name"]: CardSummary.from_dict(entry) for entry in index()}
    cards = model_cards()
    assert set(listed) == {card.name for card in cards}
    for card in cards[::50]:
        assert listed[card.name] == CardSummary.of(card)


def test_an_index_written_for_another_catalogue_is_not_used(tmp_path):
    catalog = tmp_path / "catalog.json"
    catalog.write_text(CATALOG.read_text(encoding="utf-8"), encoding="utf-8")
    generate.write_index(catalog)
    entries = index(catalog)
    data = json.loads(catalog.read_text())
    catalog.write_text(json.dumps({**data, "cards": data["cards"][:3]}))  # rewritten, its index not
    assert len(index(catalog)) == 3 and len(entries) == len(data["cards"])
    (tmp_path / INDEX_NAME).unlink()
    assert index(catalog) == entries[:3]


def test_listing_the_family_reads_the_index_not_the_catalogue():
    result = run_python("""
        import zoo
        from zoo_timm import catalog
        zoo.list_models("timm/*")
        print(catalog._read.cache_info().currsize)
        zoo.get_card("timm/test_vit")
        print(catalog._read.cache_info().currsize)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "1"]
