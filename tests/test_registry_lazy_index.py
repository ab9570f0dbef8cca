"""Catalogues whose names are declared up front: the index is read only when the catalogue is first needed."""
from __future__ import annotations

import pytest
from conftest import run_python

import zoo
from zoo.lazy_cards import Catalogue, LazyCard
from zoo.plugins import list_plugins

CATALOGUE = """
import zoo

READS = []  # one entry per call of the index function
BAD = {}    # "index": what the index function returns instead
INDEX = [
    {"name": "deep_net_a", "task": "image-classification", "modality": "image", "family": "deep",
     "aliases": ["deep_a"], "default_weights": "v1", "weights": {"v1": {"num_params": 10, "license": "MIT"}}},
    {"name": "deep_net_b", "task": "text-classification", "modality": "text", "family": "deep"},
]


def index():
    READS.append(1)
    if isinstance(BAD.get("index"), Exception):
        raise BAD["index"]
    return BAD.get("index", INDEX)


def make_card(name):
    entry = next(e for e in INDEX if e["name"] == name)
    weights = {tag: {"source": f"hf-hub:acme/{name}", **w} for tag, w in entry.get("weights", {}).items()}
    return zoo.ModelCard.from_dict({**entry, "weights": weights, "builder": "deep_zoo.models:build"})


def register(registry: zoo.Registrar) -> None:
    registry.register_catalogue(index, make_card, names=[e["name"] for e in INDEX], aliases=["deep_a"])
    registry.register(zoo.Recipe(name="deep_ft", model="deep_net_a.v1", options={"freeze": 1}))
    registry.register(zoo.ModelCard(name="plain_net", builder="deep_zoo.models:plain", task="image-classification",
                                    modality="image"))
"""


def only(monkeypatch, *names: str) -> None:
    monkeypatch.setenv("ZOO_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("ZOO_PLUGINS_ALLOW", ",".join(names))


@pytest.fixture
def deep(site, monkeypatch):
    """The ``deep`` plugin installed and loaded alone; returns its module (``READS`` counts index reads)."""
    site("deep-zoo", {"deep": "deep_plugin:register"}, {"deep_plugin/__init__.py": CATALOGUE})
    only(monkeypatch, "deep")
    import deep_plugin

    return deep_plugin


def catalogue(name: str) -> Catalogue:
    registered = zoo.default_registry().claim(name).registered
    assert isinstance(registered, LazyCard)
    return registered.catalogue


def test_loading_listing_names_and_other_lookups_do_not_read_the_index(deep):
    assert zoo.get_card("plain_net").builder == "deep_zoo.models:plain"
    assert zoo.list_models() == ["deep_ft", "deep_net_a", "deep_net_b", "plain_net"]
    assert zoo.list_models("deep_net*") == ["deep_net_a", "deep_net_b"]
    assert "deep_net_b" in zoo.default_registry() and "other_net" not in zoo.default_registry()
    info = next(p for p in list_plugins() if p.name == "deep")
    assert info.status == "loaded" and info.models == ("deep_ft", "deep_net_a", "deep_net_b", "plain_net")
    assert deep.READS == [] and not catalogue("deep_net_a").read and not catalogue("deep_net_a").built("deep_net_a")


def test_the_index_is_read_once_by_a_lookup_of_its_names_or_a_filtered_listing(deep):
    assert zoo.list_models(family="deep") == ["deep_ft", "deep_net_a", "deep_net_b"] and deep.READS == [1]
    assert zoo.list_models(pretrained=True) == ["deep_ft", "deep_net_a", "deep_net_a.v1"]
    card = zoo.get_card("deep_a")
    assert card.name == "deep_net_a" and zoo.get_card("deep_net_a") is card
    assert zoo.get_card("deep_ft").default_weights == "v1" and deep.READS == [1]


def test_an_alias_lookup_reads_the_index(deep):
    assert "deep_a.v1" in zoo.default_registry() and deep.READS == [1]
    assert zoo.get_card("deep_a").name == "deep_net_a"


def test_a_name_also_claimed_by_another_plugin_is_refused_without_reading_the_index(deep, site, monkeypatch):
    site("other-zoo", {"other": "other_plugin:register"}, {"other_plugin/__init__.py": """
        import zoo
        def register(registry):
            registry.register(zoo.ModelCard(name="deep_net_b", builder="x:y", task="image-classification",
                                            modality="image"))
            registry.register(zoo.ModelCard(name="deep_a", builder="x:y", task="image-classification",
                                            modality="image"))
        """})
    only(monkeypatch, "deep", "other")
    errors = {p.name: p.error for p in list_plugins()}
    assert "deep_net_b" in errors["deep"] and "deep_net_b" in errors["other"]
    with pytest.raises(zoo.DuplicateModelError, match="deep-zoo.*other-zoo|other-zoo.*deep-zoo"):
        zoo.get_card("deep_net_b")
    assert deep.READS == []
    assert zoo.get_card("deep_a").builder == "x:y"  # a name comes before an alias, as for cards
    assert zoo.get_card("deep_net_a").name == "deep_net_a"  # the catalogue's other cards work


def test_a_plugin_that_declares_a_name_twice_fails_at_load(site, monkeypatch):
    site("twice-zoo", {"twice": "twice_plugin:register"}, {"twice_plugin/__init__.py": """
        import zoo
        def register(registry):
            registry.register_catalogue(lambda: [], lambda name: None, names=["twice_net"])
            registry.register(zoo.ModelCard(name="twice_net", builder="x:y", task="image-classification",
                                            modality="image"))
        """})
    only(monkeypatch, "twice")
    info = next(p for p in list_plugins() if p.name == "twice")
    assert info.status == "failed" and "'twice_net' is registered twice" in info.error


def test_an_index_that_differs_from_its_declared_names_raises_naming_the_plugin_when_read(deep):
    deep.BAD["index"] = deep.INDEX[:1]
    assert zoo.get_card("plain_net").name == "plain_net"
    with pytest.raises(zoo.CardError, match=r"declared but not in the index \['deep_net_b'\].*in plugin 'deep'"):
        zoo.get_card("deep_net_a")
    with pytest.raises(zoo.CardError, match="declared"):  # remembered, not read again
        zoo.default_registry().summary("deep_net_b")
    assert deep.READS == [1] and "deep_net_a" in zoo.list_models() and zoo.list_models(modality="text") == []


def test_an_index_that_is_not_a_list_raises_a_card_error(deep):
    deep.BAD["index"] = 42  # not a list of entries
    with pytest.raises(zoo.CardError, match="index must be a list"):
        zoo.get_card("deep_net_a")


def test_an_index_function_that_crashes_raises_a_plugin_error_naming_the_plugin(deep):
    deep.BAD["index"] = OSError("index.json went missing")
    with pytest.raises(zoo.PluginError, match=r"plugin 'deep'.*could not read its catalogue index: OSError"):
        zoo.get_card("deep_net_a")


def test_strict_loading_reads_every_index(deep, monkeypatch):
    monkeypatch.setenv("ZOO_PLUGINS_STRICT", "1")
    deep.BAD["index"] = deep.INDEX[:1]
    with pytest.raises(zoo.PluginError, match="plugin 'deep' from distribution deep-zoo: its catalogue index"):
        zoo.list_models()


def test_a_catalogue_registered_directly_with_declared_names():
    registry = zoo.Registry()
    reads = []
    entry = {"name": "direct_net", "task": "text-classification", "modality": "text"}
    registry.register_catalogue(lambda: reads.append(1) or [entry], lambda name: zoo.ModelCard(
        name=name, builder="x:y", task="text-classification", modality="text"), names=["direct_net"])
    assert registry.names() == ["direct_net"] and reads == []
    assert registry.get_card("direct_net").builder == "x:y" and reads == [1]
    with pytest.raises(zoo.CardError, match="registered twice"):
        registry.register(zoo.ModelCard(name="direct_net", builder="x:y", task="text-classification",
                                        modality="text"))
    with pytest.raises(zoo.CardError, match="names must be a list"):
        registry.register_catalogue(lambda: [], lambda name: None, names="direct_net")


def test_creating_a_model_of_another_family_does_not_read_the_timm_catalogue():
    pytest.importorskip("zoo_timm")
    result = run_python("""
        import zoo, zoo_timm.catalog as catalog
        reads = []
        index = catalog._index_entries
        catalog._index_entries = lambda path: reads.append(path) or index(path)
        registry = zoo.default_registry()
        registry.get_card("resnet18")
        timm = registry.claim("timm/resnet50").registered.catalogue
        names = registry.list_models()
        print(len(reads), timm.read, sum(name.startswith("timm/") for name in names) > 1000)
        registry.get_card("timm/resnet50")
        print(len(reads), timm.read)
    """, env={"ZOO_PLUGINS_AUTOLOAD": "1", "ZOO_PLUGINS_BLOCK": ""})
    assert result.returncode == 0, result.stderr
    # registering picks out the names without parsing the index; only the lookup of a timm/ name parses it
    assert result.stdout.split() == ["0", "False", "True", "1", "True"]
