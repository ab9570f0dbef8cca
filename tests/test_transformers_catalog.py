"""The curated catalogue: listed without torch or transformers; a card's weights from a local Hub cache give
transformers' own outputs; catalog.json is what the generator writes."""
from __future__ import annotations

import json
import sys

import pytest
import torch
from conftest import run_python
from transformers_helpers import (
    PLUGINS,
    entry_inputs,
    family_fixture,
    hub_cache,
    reference_output,
    serve_entry,
)

import zoo

__all__ = ["family_fixture"]
sys.path.insert(0, str(PLUGINS))
from zoo_transformers.generate import ENTRIES, entry_card  # noqa: E402

BY_NAME = {e.name: e for e in ENTRIES}


def test_listing_imports_neither_torch_nor_transformers(family, tmp_path):
    site = tmp_path / "site"
    result = run_python(f"""
        import sys
        sys.path[:0] = [{str(site)!r}, {str(PLUGINS)!r}]
        import zoo
        names = zoo.list_models("transformers/*")
        cards = [zoo.get_card(n) for n in names if zoo.get_card(n).weights]
        print(len(cards), sorted({{c.modality for c in cards}}), "torch" in sys.modules, "transformers" in sys.modules)
        assert all(c.weights["hf"].source.startswith("hf-hub:") and c.weights["hf"].license for c in cards)
    """)
    assert result.returncode == 0, result.stderr
    count, modalities, torch_loaded, transformers_loaded = result.stdout.split(" ", 1)[0], *result.stdout.split(
        " ", 1)[1].rsplit(" ", 2)
    assert int(count) >= 25
    assert modalities == "['audio', 'image', 'text']"
    assert (torch_loaded, transformers_loaded.strip()) == ("False", "False")


def test_catalog_json_is_what_the_generator_writes():
    data = json.loads((PLUGINS / "zoo_transformers" / "catalog.json").read_text())
    written = {card["name"]: card for card in data["cards"]}
    for name in ("deberta-v3-base", "vit-base-patch16-224", "wav2vec2-base-superb-ks"):
        assert json.loads(json.dumps(entry_card(BY_NAME[name]))) == written[f"transformers/{name}"]


def check_entry(zoo_module, entry, tmp_path, monkeypatch):
    cache = hub_cache(tmp_path, monkeypatch)
    theirs, extractor = serve_entry(entry, cache, tmp_path)
    ours = zoo_module.create(f"transformers/{entry.name}", pretrained=True).eval()
    inputs = entry_inputs(entry)
    with torch.no_grad():
        got = ours(**inputs) if isinstance(inputs, dict) else ours(*inputs)
        expected = reference_output(theirs, entry, extractor, inputs)
    tolerance = 1e-4 if entry.model_type == "audio-spectrogram-transformer" else 1e-5
    torch.testing.assert_close(got, expected, atol=tolerance, rtol=0)
    return ours


@pytest.mark.parametrize("name", ["wav2vec2-base-superb-ks", "bge-small-en-v1_5"])
def test_curated_card_equals_transformers(family, tmp_path, monkeypatch, name):
    ours = check_entry(family, BY_NAME[name], tmp_path, monkeypatch)
    assert ours.zoo_card.weights["hf"].source == f"hf-hub:{BY_NAME[name].repo}"


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BY_NAME))
def test_every_curated_card_equals_transformers(family, tmp_path, monkeypatch, name):
    check_entry(family, BY_NAME[name], tmp_path, monkeypatch)


def test_family_is_optional(family, monkeypatch):
    """Without transformers, the cards still list and create says what to install."""
    monkeypatch.setitem(sys.modules, "transformers", None)
    assert "transformers/deberta-v3-base" in zoo.list_models("transformers/*")
    with pytest.raises(zoo.PluginError, match=r"zoo-models\[transformers\]"):
        zoo.create("transformers/deberta-v3-base")



def test_curated_card_builds_offline_without_its_config(family, tmp_path, monkeypatch):
    """pretrained=False needs nothing from the Hub: the card's published shape stands in for config.json."""
    hub_cache(tmp_path, monkeypatch)
    model = family.create("transformers/dinov2-small", device="meta")
    assert model.zoo_card.head == "head" and model.num_features == 384


@pytest.mark.slow
def test_every_card_passes_the_plugin_check(family, tmp_path, monkeypatch):
    import zoo.testing

    hub_cache(tmp_path, monkeypatch)
    report = zoo.testing.check_plugin("transformers", device="meta")
    assert report.ok and len(report.checked) >= 31
