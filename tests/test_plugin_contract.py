"""The plugin contract (docs/plugins.md): a registrar that only registers, a checked entry point,
a stated API version, status kept on the registry the plugins loaded into, and typed zoo."""
from __future__ import annotations

import tomllib
from importlib import resources

import pytest
from conftest import REPO

import zoo
from zoo.plugins import list_plugins, load_plugins

GOOD = """
import zoo

def register(registry: zoo.Registrar) -> None:
    registry.register(zoo.ModelCard(name="good_net", builder="x:y", task="image-classification", modality="image"))
"""


def only(monkeypatch, *names: str) -> None:
    """Load only these plugins (not zoo's built-in families), to keep the test fast."""
    monkeypatch.setenv("ZOO_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("ZOO_PLUGINS_ALLOW", ",".join(names))


def plugin(site, name: str, source: str) -> None:
    """Install distribution ``<name>-zoo`` whose entry point `name` is ``<name>_plugin:register``."""
    site(f"{name}-zoo", {name: f"{name}_plugin:register"}, {f"{name}_plugin/__init__.py": source})


def status(name: str) -> zoo.PluginInfo:
    return next(p for p in list_plugins() if p.name == name)


def test_a_plugin_gets_a_registrar_that_registers_but_offers_no_lookups(site, monkeypatch):
    plugin(site, "good", GOOD)
    plugin(site, "peek", """
        import zoo
        SEEN = {}

        def register(registry: zoo.Registry) -> None:  # today's annotation: only an annotation
            SEEN.update({name: hasattr(registry, name) for name in ("get_card", "list_models", "resolve", "names")})
            registry.register(zoo.ModelCard(name="peek_net", builder="x:y", task="image-classification",
                                            modality="image"))
        """)
    plugin(site, "lookup", """
        import zoo
        def register(registry):
            registry.register(zoo.ModelCard(name="lookup_net", builder="x:y", task="image-classification",
                                            modality="image"))
            registry.list_models()
        """)
    only(monkeypatch, "good", "peek", "lookup")

    assert zoo.list_models() == ["good_net", "peek_net"]
    import peek_plugin

    assert peek_plugin.SEEN == {"get_card": False, "list_models": False, "resolve": False, "names": False}
    info = status("lookup")
    assert info.status == "failed" and "AttributeError" in info.error
    assert "only registers" in info.error and "zoo.get_card" in info.error  # says where lookups are
    with pytest.raises(zoo.PluginError, match="lookup-zoo"):  # nothing of it half-registered
        zoo.get_card("lookup_net")


@pytest.mark.parametrize("signature", ["def register():", "def register(registry, options):",
                                       "def register(*, registry):", "register = 'not a function'\ndef unused():"])
def test_an_entry_point_zoo_cannot_call_with_one_argument_fails_naming_the_plugin(site, monkeypatch, signature):
    plugin(site, "good", GOOD)
    plugin(site, "odd", f"import zoo\nCALLS = []\n{signature}\n    CALLS.append(1)\n")
    only(monkeypatch, "good", "odd")

    assert zoo.list_models() == ["good_net"]  # isolated like any other failure
    info = status("odd")
    assert info.status == "failed" and info.error.startswith("PluginError: plugin 'odd' from distribution odd-zoo")
    assert "def register(registry)" in info.error  # says how to write it
    import odd_plugin

    assert odd_plugin.CALLS == []  # checked before it is called

    monkeypatch.setenv("ZOO_PLUGINS_STRICT", "1")
    zoo.registry.reset_default_registry()
    with pytest.raises(zoo.PluginError, match="plugin 'odd' from distribution odd-zoo"):
        zoo.list_models()


def test_entry_points_that_take_one_argument_in_other_shapes_load(site, monkeypatch):
    plugin(site, "shapes", """
        import zoo
        def card(name):
            return zoo.ModelCard(name=name, builder="x:y", task="image-classification", modality="image")
        class Family:
            def register(self, registry, *, width=8):
                registry.register(card("method_net"))
        def register(registry, extra=None, *more, **options):
            registry.register(card("default_net"))
            Family().register(registry)
        """)
    site("method-zoo", {"method": "shapes_plugin:Family.register"}, {})
    only(monkeypatch, "shapes", "method")

    assert zoo.list_models() == ["default_net", "method_net"]
    info = status("method")  # an unbound method needs two arguments: refused, with its signature
    assert info.status == "failed" and "takes (self, registry, *, width=8)" in info.error


def test_plugin_status_lives_on_the_registry_it_loaded_into(site, monkeypatch):
    plugin(site, "good", GOOD)
    only(monkeypatch, "good")
    assert status("good").status == "loaded"
    before = list_plugins()

    other = zoo.Registry()
    assert load_plugins(other, candidates=[]) == []  # loading another registry ...
    assert other.plugins() == []
    assert list_plugins() == before  # ... leaves the default registry's status alone
    assert zoo.default_registry().plugins() == before

    monkeypatch.setenv("ZOO_PLUGINS_BLOCK", "good")
    zoo.registry.reset_default_registry()  # a reset drops the registry with its status
    assert status("good").status == "disabled"


def test_plugin_api_version_is_stated_and_documented():
    assert zoo.PLUGIN_API_VERSION == 1
    doc = (REPO / "docs" / "plugins.md").read_text()
    assert "zoo.PLUGIN_API_VERSION" in doc and "DeprecationWarning" in doc and "zoo.Registrar" in doc

    class Recorder:  # anything with register() is a Registrar; so is the Registry
        def register(self, entry: zoo.ModelCard | zoo.Recipe) -> zoo.ModelCard | zoo.Recipe:
            return entry

    card = zoo.ModelCard(name="typed_net", builder="x:y", task="image-classification", modality="image")
    for registrar in (Recorder(), zoo.Registry()):
        accepted: zoo.Registrar = registrar
        assert accepted.register(card) is card


def test_zoo_ships_its_type_information():
    assert resources.files("zoo").joinpath("py.typed").is_file()
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data["zoo"]  # in the wheel, so type checkers read zoo's hints
