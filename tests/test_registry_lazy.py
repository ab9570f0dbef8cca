"""Catalogues: cards listed from a light index and built on first use (``Registrar.register_catalogue``)."""
from __future__ import annotations

import pytest
from conftest import run_python

import zoo
from zoo.plugins import list_plugins

CATALOGUE = """
import zoo

BUILT = []
WEIGHTS = {"v1": {"source": "hf-hub:acme/big_net_a", "num_classes": 10, "num_params": 1000, "license": "MIT"},
           "v2": {"source": "hf-hub:acme/big_net_a_v2", "num_params": 1000, "license": "CC-BY-NC-4.0"}}
INDEX = [
    {"name": "big_net_a", "task": "image-classification", "modality": "image", "family": "big",
     "aliases": ["big_a"], "default_weights": "v1",
     "weights": {tag: {"num_params": 1000, "license": w["license"]} for tag, w in WEIGHTS.items()}},
    {"name": "big_net_b", "task": "image-classification", "modality": "image", "family": "big"},
]
BAD = {}  # name -> what make_card gets wrong


def make_card(name):
    BUILT.append(name)
    if BAD.get(name) == "crash":
        raise ZeroDivisionError("boom")
    entry = next(e for e in INDEX if e["name"] == name)
    fields = {key: value for key, value in entry.items() if key != "weights"}
    fields["weights"] = WEIGHTS if entry.get("weights") else {}
    return zoo.ModelCard.from_dict({**fields, "builder": "big_zoo.models:build", **BAD.get(name, {})})


def register(registry: zoo.Registrar) -> None:
    registry.register_catalogue(INDEX, make_card)
    registry.register(zoo.Recipe(name="big_ft", model="big_net_a.v2", options={"freeze": 1}))
"""


def only(monkeypatch, *names: str) -> None:
    monkeypatch.setenv("ZOO_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("ZOO_PLUGINS_ALLOW", ",".join(names))


@pytest.fixture
def big(site, monkeypatch):
    """The ``big`` plugin installed and loaded alone; returns its module (``BUILT`` records builds)."""
    site("big-zoo", {"big": "big_plugin:register"}, {"big_plugin/__init__.py": CATALOGUE})
    only(monkeypatch, "big")
    import big_plugin

    return big_plugin


def test_listing_and_filters_read_the_index_and_build_no_card(big):
    assert zoo.list_models() == ["big_ft", "big_net_a", "big_net_b"]
    assert zoo.list_models("big_net*", family="big", task="image-classification", modality="image") == [
        "big_net_a", "big_net_b"]
    assert zoo.list_models(pretrained=True) == ["big_ft", "big_net_a", "big_net_a.v1", "big_net_a.v2"]
    assert "big_net_a.v2" in zoo.default_registry() and "big_net_b.v1" not in zoo.default_registry()
    assert "big_ft.v1" in zoo.default_registry()  # a recipe's tags are its model's, read from the index
    summary = zoo.default_registry().summary("big_ft")
    assert (summary.recipe.model, summary.default_weights, summary.weights["v2"].license) == (
        "big_net_a.v2", "v2", "CC-BY-NC-4.0")
    info = next(p for p in list_plugins() if p.name == "big")
    assert info.status == "loaded" and info.models == ("big_ft", "big_net_a", "big_net_b")
    assert big.BUILT == []


def test_a_card_is_built_once_when_looked_up_by_name_alias_tag_or_recipe(big):
    card = zoo.get_card("big_net_a")
    assert card.weights["v1"].num_classes == 10 and big.BUILT == ["big_net_a"]
    assert zoo.get_card("big_a") is card and zoo.default_registry().claim("big_net_a").entry is card
    assert zoo.get_card("big_net_a.v2").default_weights == "v2"
    ft = zoo.get_card("big_ft")
    assert (ft.name, ft.recipe.model, ft.default_weights, ft.builder) == ("big_ft", "big_net_a.v2", "v2",
                                                                          "big_zoo.models:build")
    assert big.BUILT == ["big_net_a"]
    with pytest.raises(zoo.UnknownWeightsError, match="v1, v2"):
        zoo.get_card("big_net_a.v3")


def test_unknown_names_suggest_catalogue_names(big):
    with pytest.raises(zoo.UnknownModelError, match="Did you mean: big_net_a") as err:
        zoo.get_card("big_net_aa")
    assert "big_net_a" in err.value.suggestions and big.BUILT == []


def test_a_name_claimed_by_a_catalogue_and_another_plugin_is_listed_and_refused(big, site, monkeypatch):
    site("other-zoo", {"other": "other_plugin:register"}, {"other_plugin/__init__.py": """
        import zoo
        def register(registry):
            registry.register(zoo.ModelCard(name="big_net_b", builder="x:y", task="image-classification",
                                            modality="image"))
        """})
    only(monkeypatch, "big", "other")
    assert "big_net_b" in zoo.list_models()
    with pytest.raises(zoo.DuplicateModelError, match="big-zoo.*other-zoo|other-zoo.*big-zoo"):
        zoo.get_card("big_net_b")
    errors = {p.name: p.error for p in list_plugins()}
    assert "big_net_b" in errors["big"] and "big_net_b" in errors["other"]
    assert zoo.get_card("big_net_a").name == "big_net_a"  # the plugins' other models work


def test_a_catalogue_that_names_a_card_twice_or_an_alias_taken_fails_its_plugin(site, monkeypatch):
    site("twice-zoo", {"twice": "twice_plugin:register"}, {"twice_plugin/__init__.py": """
        import zoo
        def register(registry):
            entry = {"name": "twice_net", "task": "image-classification", "modality": "image"}
            registry.register_catalogue([entry], lambda name: None)
            registry.register(zoo.ModelCard(name="twice_net", builder="x:y", task="image-classification",
                                            modality="image"))
        """})
    only(monkeypatch, "twice")
    info = next(p for p in list_plugins() if p.name == "twice")
    assert info.status == "failed" and "'twice_net' is registered twice" in info.error
    with pytest.raises(zoo.PluginError, match="failed to load"):
        zoo.get_card("twice_net")


def test_a_malformed_index_entry_fails_the_plugin_at_load(site, monkeypatch):
    site("badindex-zoo", {"badindex": "badindex_plugin:register"}, {"badindex_plugin/__init__.py": """
        def register(registry):
            registry.register_catalogue([{"name": "odd_net", "task": "image-classification", "modality": "smell"}],
                                        lambda name: None)
        """})
    only(monkeypatch, "badindex")
    info = next(p for p in list_plugins() if p.name == "badindex")
    assert info.status == "failed" and "modality" in info.error and "smell" in info.error


def test_a_bad_card_built_later_raises_a_card_error_naming_its_plugin(big):
    big.BAD["big_net_b"] = {"layer_groups": "stem"}  # not a list
    with pytest.raises(zoo.CardError, match=r"layer_groups.*in plugin 'big'") as err:
        zoo.get_card("big_net_b")
    assert err.value.plugin == "big" and err.value.field == "layer_groups"
    big.BAD["big_net_b"] = {"family": "small"}  # the card says something its index entry does not
    with pytest.raises(zoo.CardError, match=r"\['family'\] differ from its catalogue index.*in plugin 'big'"):
        zoo.get_card("big_net_b")
    big.BAD.clear()
    assert zoo.get_card("big_net_b").family == "big"  # a failed build is not kept: fixed, it builds


def test_a_make_card_that_crashes_raises_a_plugin_error_naming_its_plugin(big):
    big.BAD["big_net_b"] = "crash"
    with pytest.raises(zoo.PluginError, match="plugin 'big' from big-zoo could not build the card of 'big_net_b': "
                                              "ZeroDivisionError: boom"):
        zoo.get_card("big_net_b")


def test_registering_a_catalogue_directly():
    registry = zoo.Registry()
    built = []
    registry.register_catalogue([{"name": "direct_net", "task": "text-classification", "modality": "text"}],
                                lambda name: built.append(name) or zoo.ModelCard(
                                    name=name, builder="x:y", task="text-classification", modality="text"))
    assert registry.list_models(modality="text") == ["direct_net"] and built == []
    assert registry.get_card("direct_net").builder == "x:y" and built == ["direct_net"]
    with pytest.raises(zoo.CardError, match="registered twice"):
        registry.register_catalogue([{"name": "direct_net", "task": "text-classification", "modality": "text"}],
                                    lambda name: None)
    with pytest.raises(zoo.CardError, match="make_card must be a function"):
        registry.register_catalogue([], "not callable")


def test_zoo_list_of_the_timm_family_builds_no_card_and_imports_neither_torch_nor_timm():
    pytest.importorskip("zoo_timm")
    result = run_python("""
        import sys, zoo
        from zoo.commands.catalog import _row
        registry = zoo.default_registry()
        rows = [_row(registry, name) for name in registry.list_models("timm/*", pretrained=True)]
        built = sum(claim.registered.built for name in registry.names() if name.startswith("timm/")
                    for claim in [registry.claim(name)] if hasattr(claim.registered, "built"))
        card = zoo.get_card("timm/test_vit")
        print(len(rows), built, "torch" in sys.modules, "timm" in sys.modules, card.feature_stages[0].layout)
    """)
    assert result.returncode == 0, result.stderr
    count, built, torch_loaded, timm_loaded, layout = result.stdout.split()
    assert int(count) > 1000 and built == "0" and (torch_loaded, timm_loaded) == ("False", "False")
    assert layout == "NLC"
