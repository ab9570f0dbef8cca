"""Plugin discovery and failure isolation, with real distributions (dist-info + entry points) on sys.path."""
import pytest

import zoo
from zoo.plugins import list_plugins

GOOD = """
import zoo

def register(registry):
    registry.register(zoo.ModelCard(name="good_net", builder="good_plugin.models:build",
                                    task="image-classification", modality="image", family="good"))
"""
GOOD_MODELS = """
import torch

def build(num_classes=4):
    return torch.nn.Linear(3, num_classes)
"""


def status(name):
    return next(p for p in list_plugins() if p.name == name)


def install_good(site):
    site("good-zoo", {"good": "good_plugin:register"},
         {"good_plugin/__init__.py": GOOD, "good_plugin/models.py": GOOD_MODELS})


def test_good_plugin_loads_and_its_model_builds(site):
    install_good(site)
    assert "good_net" in zoo.list_models()
    info = status("good")
    assert (info.status, info.distribution, info.version, info.models) == ("loaded", "good-zoo", "1.0", ("good_net",))
    model = zoo.create("good_net", num_classes=2)
    assert model.out_features == 2 and model.zoo_card.name == "good_net"


def test_plugin_whose_import_fails_is_isolated(site):
    install_good(site)
    site("broken-zoo", {"broken": "broken_plugin:register"},
         {"broken_plugin/__init__.py": "import a_module_that_does_not_exist\n"})
    assert "good_net" in zoo.list_models()
    info = status("broken")
    assert info.status == "failed" and "a_module_that_does_not_exist" in info.error
    with pytest.raises(zoo.UnknownModelError) as err:  # its models are unknown; the failure is named
        zoo.get_card("broken_net")
    assert "broken-zoo" in str(err.value)
    assert isinstance(err.value.__cause__, ModuleNotFoundError)


def test_plugin_whose_register_raises_keeps_its_cause(site):
    install_good(site)
    site("raising-zoo", {"raising": "raising_plugin:register"}, {"raising_plugin/__init__.py": """
        import zoo
        def register(registry):
            registry.register(zoo.ModelCard(name="raising_net", builder="x:y", task="image-classification",
                                            modality="image"))
            raise RuntimeError("weights index unreachable")
        """})
    info = status("raising")
    assert info.status == "failed" and "weights index unreachable" in info.error
    assert "raising_net" not in zoo.list_models()  # nothing half-registered
    with pytest.raises(zoo.PluginError, match="raising-zoo") as err:
        zoo.create("raising_net")
    assert isinstance(err.value.__cause__, RuntimeError)
    assert zoo.create("good_net").in_features == 3


def test_plugin_with_invalid_card_names_field_and_plugin(site):
    site("badcard-zoo", {"badcard": "badcard_plugin:register"}, {"badcard_plugin/__init__.py": """
        import zoo
        def register(registry):
            registry.register(zoo.ModelCard(name="bad_net", builder="x:y", task="image-classification",
                                            modality="video"))
        """})
    info = status("badcard")
    assert info.status == "failed"
    assert "'modality'" in info.error and "badcard" in info.error


def test_two_plugins_claiming_one_name_is_an_error_naming_both(site):
    install_good(site)
    site("copycat-zoo", {"copycat": "copycat_plugin:register"},
         {"copycat_plugin/__init__.py": GOOD.replace("good_plugin", "copycat_plugin")})
    assert zoo.list_models("good_net") == ["good_net"]
    with pytest.raises(zoo.DuplicateModelError) as err:
        zoo.get_card("good_net")
    assert "good-zoo" in str(err.value) and "copycat-zoo" in str(err.value)


def test_blocked_plugin_is_never_imported(site, monkeypatch):
    site("boom-zoo", {"boom": "boom_plugin:register"},
         {"boom_plugin/__init__.py": "raise SystemExit('imported!')\n"})
    monkeypatch.setenv("ZOO_PLUGINS_BLOCK", "boom")
    assert status("boom").status == "disabled"
    import sys
    assert "boom_plugin" not in sys.modules


def test_autoload_off_loads_only_allowed(site, monkeypatch):
    install_good(site)
    site("other-zoo", {"other": "other_plugin:register"}, {"other_plugin/__init__.py": """
        import zoo
        def register(registry):
            registry.register(zoo.ModelCard(name="other_net", builder="x:y", task="image-classification",
                                            modality="image"))
        """})
    monkeypatch.setenv("ZOO_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("ZOO_PLUGINS_ALLOW", "other")
    assert "other_net" in zoo.list_models() and "good_net" not in zoo.list_models()
    assert status("good").status == "disabled" and status("other").status == "loaded"


def test_strict_mode_turns_failures_into_errors(site, monkeypatch):
    site("broken-zoo", {"broken": "broken_plugin:register"},
         {"broken_plugin/__init__.py": "def register(registry):\n    raise ValueError('bad plugin')\n"})
    monkeypatch.setenv("ZOO_PLUGINS_STRICT", "1")
    with pytest.raises(zoo.PluginError, match="broken-zoo") as err:
        zoo.list_models()
    assert isinstance(err.value.__cause__, ValueError)


def test_each_plugin_registers_once_per_process(site):
    site("count-zoo", {"count": "count_plugin:register"}, {"count_plugin/__init__.py": """
        import zoo
        CALLS = []
        def register(registry):
            CALLS.append(1)
            registry.register(zoo.ModelCard(name="count_net", builder="x:y", task="image-classification",
                                            modality="image"))
        """})
    zoo.list_models()
    zoo.get_card("count_net")
    zoo.list_plugins()
    zoo.list_models("count*")
    import count_plugin
    assert count_plugin.CALLS == [1]


def test_zoo_plugins_command_shows_errors(site, capsys):
    site("broken-zoo", {"broken": "broken_plugin:register"},
         {"broken_plugin/__init__.py": "import a_module_that_does_not_exist\n"})
    from zoo.cli import main
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    line = next(row for row in out.splitlines() if row.startswith("broken "))
    assert "broken-zoo" in line and "failed" in line and "a_module_that_does_not_exist" in line


def test_a_name_two_plugins_claim_is_registered_and_its_lookup_names_both(site):
    install_good(site)
    site("copycat-zoo", {"copycat": "copycat_plugin:register"},
         {"copycat_plugin/__init__.py": GOOD.replace("good_plugin", "copycat_plugin")})
    registry = zoo.default_registry()
    assert "good_net" in registry and "good_net.no_such_tag" not in registry and "bad_net" not in registry
    with pytest.raises(zoo.DuplicateModelError) as err:
        registry.claim("good_net")
    assert "good-zoo" in str(err.value) and "copycat-zoo" in str(err.value)


def test_claim_names_the_plugin_that_registered_a_name_and_owner_still_answers_with_a_warning(site):
    install_good(site)
    registry = zoo.default_registry()
    claim = registry.claim("good_net")
    assert (claim.plugin, claim.distribution, claim.entry.name) == ("good", "good-zoo", "good_net")
    with pytest.warns(DeprecationWarning, match=r"Registry\.claim\(\)"):
        assert registry.owner("good_net") == claim
