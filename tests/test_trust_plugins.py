"""One bad plugin never takes down the others: in `zoo list/info/plugins`, `zoo.create` and torch.hub.

Every plugin here is a real distribution (dist-info + entry points) on sys.path.
"""
from __future__ import annotations

import json
import logging
import sys
import threading

import pytest
import torch
from conftest import REPO

import zoo
from zoo import plugin_loader, plugins
from zoo.cli import main
from zoo.registry import reset_default_registry

MODELS = """
import torch

def build(num_classes=4):
    return torch.nn.Linear(3, num_classes)
"""


def plugin_module(*names: str, extra: str = "", before: str = "") -> str:
    """Source of a plugin module registering one small Linear model per name."""
    cards = "".join(
        f"    registry.register(zoo.ModelCard(name={name!r}, builder=__name__ + '.models:build',"
        f" task='image-classification', modality='image', description='model ' + {name!r}))\n"
        for name in names
    )
    return f"import zoo\n{before}\ndef register(registry):\n{extra}{cards}"


def install(site, plugin: str, *names: str, extra: str = "", before: str = "") -> None:
    """Install distribution ``<plugin>-zoo`` with entry point `plugin`, registering `names`."""
    package = f"{plugin}_plugin"
    site(f"{plugin}-zoo", {plugin: f"{package}:register"},
         {f"{package}/__init__.py": plugin_module(*names, extra=extra, before=before),
          f"{package}/models.py": MODELS})


def only(monkeypatch, *names: str) -> None:
    """Load only these plugins (not zoo's built-in families), to keep the test fast."""
    monkeypatch.setenv("ZOO_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("ZOO_PLUGINS_ALLOW", ",".join(names))


def status(name: str) -> plugins.PluginInfo:
    return next(p for p in zoo.list_plugins() if p.name == name)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def hub(monkeypatch):
    """torch.hub's own code on this checkout: its GitHub fetch answers with the repository root."""
    monkeypatch.setattr(torch.hub, "_get_cache_or_reload", lambda *args, **kwargs: str(REPO))
    monkeypatch.delitem(sys.modules, "hubconf", raising=False)
    return torch.hub


# ---------------------------------------------------------------------------- broken entries


def test_recipe_whose_model_is_missing_is_reported_and_the_rest_keeps_working(site, monkeypatch, capsys):
    install(site, "good", "good_net")
    install(site, "dangle", "dangle_net",
            extra="    registry.register(zoo.Recipe(name='dangle_ft', model='no_such_net', "
                  "required=('num_classes',)))\n")
    only(monkeypatch, "good", "dangle")

    assert zoo.list_models() == ["dangle_ft", "dangle_net", "good_net"]
    code, out, _ = cli(capsys, "list")
    assert code == 0 and "good_net" in out and "dangle_net" in out
    assert "unusable" in next(line for line in out.splitlines() if line.startswith("dangle_ft"))
    code, out, _ = cli(capsys, "list", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert code == 0 and "no_such_net" in rows["dangle_ft"]["error"] and rows["good_net"]["task"]
    assert cli(capsys, "info", "dangle_net")[0] == 0
    code, _, err = cli(capsys, "info", "dangle_ft")
    assert code == 2 and "'no_such_net'" in err and "dangle-zoo" in err

    assert zoo.create("dangle_net").out_features == 4 and zoo.create("good_net").out_features == 4
    with pytest.raises(zoo.UnknownModelError, match="recipe 'dangle_ft'.*'no_such_net'"):
        zoo.create("dangle_ft", num_classes=2)

    info = status("dangle")
    assert info.status == "loaded" and "dangle_ft" in info.error and "no_such_net" in info.error
    assert status("good").error is None
    code, out, _ = cli(capsys, "plugins")
    assert code == 0 and "no_such_net" in next(line for line in out.splitlines() if line.startswith("dangle "))


def test_strict_mode_fails_on_a_recipe_whose_model_is_missing(site, monkeypatch):
    install(site, "dangle", "dangle_net",
            extra="    registry.register(zoo.Recipe(name='dangle_ft', model='no_such_net'))\n")
    only(monkeypatch, "dangle")
    monkeypatch.setenv("ZOO_PLUGINS_STRICT", "1")
    with pytest.raises(zoo.PluginError, match="dangle-zoo.*dangle_ft"):
        zoo.list_models()


def test_plugin_claiming_a_builtin_name_breaks_only_that_name(site, capsys, hub):
    install(site, "copycat", "resnet18", "copycat_net")

    assert {"resnet18", "resnet34", "copycat_net"} <= set(zoo.list_models())
    code, out, _ = cli(capsys, "list", "resnet*")
    rows = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert code == 0 and "unusable" in rows["resnet18"] and "image-classification" in rows["resnet34"]
    assert cli(capsys, "info", "resnet34")[0] == 0
    code, _, err = cli(capsys, "info", "resnet18")
    assert code == 2 and "copycat-zoo" in err and "from zoo" in err  # names both distributions

    assert zoo.create("copycat_net").out_features == 4
    assert zoo.create("mobilenet_v3_small", num_classes=3).classifier[-1].out_features == 3
    assert "resnet18" in status("copycat").error and status("copycat").status == "loaded"
    assert "resnet18" in status("vision").error and status("text").error is None

    assert "resnet18" in hub.list("owner/zoo", trust_repo=True)  # listed; its entry gives the error
    assert hub.load(str(REPO), "copycat_net", source="local", num_classes=2).out_features == 2
    with pytest.raises(zoo.DuplicateModelError, match="copycat-zoo"):
        hub.load(str(REPO), "resnet18", source="local")


def test_models_named_like_hubconf_names_leave_torch_hub_working(site, monkeypatch, hub):
    install(site, "odd", "dependencies", "class", "my-net", "create", "sorted", "tiny_net")
    only(monkeypatch, "odd")

    # "create" is hubconf's generic entry, not the model of that name
    assert sorted(hub.list("owner/zoo", trust_repo=True)) == ["create", "sorted", "tiny_net"]
    assert hub.load(str(REPO), "tiny_net", source="local", num_classes=2).out_features == 2
    assert "model tiny_net" in hub.help("owner/zoo", "tiny_net", trust_repo=True)
    for name in ("dependencies", "class", "my-net", "create"):  # not hub entries, still models
        assert zoo.create(name).out_features == 4
        assert hub.load(str(REPO), "create", name, source="local").out_features == 4


# ---------------------------------------------------------------------------- failures in plugin code


def test_system_exit_from_a_plugins_import_or_register_is_isolated(site, monkeypatch):
    install(site, "good", "good_net")
    site("exit-import-zoo", {"exit_import": "exit_import_plugin:register"},
         {"exit_import_plugin/__init__.py": "raise SystemExit('exit at import')\n"})
    install(site, "exit_register", "exit_net", extra="    raise SystemExit(3)\n")
    install(site, "base", "base_net", before="class Stop(BaseException):\n    pass\n", extra="    raise Stop('stop')\n")
    only(monkeypatch, "good", "exit_import", "exit_register", "base")

    assert zoo.list_models() == ["good_net"]
    assert zoo.create("good_net").out_features == 4
    assert "SystemExit: exit at import" in status("exit_import").error
    assert status("exit_register").status == "failed" and "SystemExit" in status("exit_register").error
    assert status("base").status == "failed" and "Stop: stop" in status("base").error

    install(site, "ctrl_c", "ctrl_c_net", extra="    raise KeyboardInterrupt\n")
    only(monkeypatch, "good", "ctrl_c")
    reset_default_registry()
    with pytest.raises(KeyboardInterrupt):  # the user's Ctrl-C still stops zoo
        zoo.list_models()


def test_register_calling_back_into_zoo_sees_the_plugins_loaded_so_far(site, monkeypatch):
    install(site, "good", "good_net")
    install(site, "zcallback", "zcallback_net", before="SEEN = []\n",
            extra="    SEEN.append((zoo.list_models(), zoo.get_card('good_net').name))\n")
    only(monkeypatch, "good", "zcallback")

    result: list[list[str]] = []
    thread = threading.Thread(target=lambda: result.append(zoo.list_models()), daemon=True)
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "loading plugins hung"
    import zcallback_plugin

    assert zcallback_plugin.SEEN == [(["good_net"], "good_net")]  # once, with what was loaded before it
    assert result == [["good_net", "zcallback_net"]] and status("zcallback").status == "loaded"


def test_a_slow_plugin_import_is_named_while_it_loads(site, monkeypatch, caplog):
    install(site, "good", "good_net")
    install(site, "slow", "slow_net", before="import time\ntime.sleep(0.6)\n")
    only(monkeypatch, "good", "slow")
    monkeypatch.setattr(plugin_loader, "SLOW_PLUGIN_SECONDS", 0.2)

    with caplog.at_level(logging.WARNING, logger="zoo.plugins"):
        assert zoo.list_models() == ["good_net", "slow_net"]
    warnings = [r.getMessage() for r in caplog.records if r.name == "zoo.plugins"]
    assert len(warnings) == 1
    assert "still importing plugin 'slow' from distribution slow-zoo" in warnings[0]
    assert "ZOO_PLUGINS_BLOCK=slow" in warnings[0]
