"""torch.hub through its own code: list, help and load resolve 'owner/zoo' to this checkout, offline."""
import sys

import pytest
import torch
from conftest import REPO

from zoo.registry import natural_key


@pytest.fixture
def hub_checkout(monkeypatch, acme):
    """torch.hub's GitHub fetch is replaced by this checkout; everything else is torch.hub's own code."""
    calls = []

    def fake_fetch(github, force_reload, trust_repo="check", calling_fn="load", verbose=True, skip_validation=False):
        calls.append(github)
        return str(REPO)

    monkeypatch.setattr(torch.hub, "_get_cache_or_reload", fake_fetch)
    monkeypatch.delitem(sys.modules, "hubconf", raising=False)
    yield calls


def test_hub_list_shows_every_model_and_nothing_else(hub_checkout):
    import zoo

    entries = torch.hub.list("owner/zoo", trust_repo=True)
    assert hub_checkout == ["owner/zoo"]
    # Names that are identifiers are entries of their own; the rest (timm/...) go through `create`.
    assert sorted(set(entries) - {"create"}, key=natural_key) == [n for n in zoo.list_models() if n.isidentifier()]
    assert "create" in entries  # the one generic entry: any name zoo.create takes
    assert {"acme_net_s", "acme_ft"} <= set(entries)  # a third-party plugin's models too


def test_hub_help_shows_the_card(hub_checkout):
    text = torch.hub.help("owner/zoo", "acme_ft", trust_repo=True)
    assert "acme_net_s with a new head" in text
    assert "Recipe of acme_net_s" in text and "num_classes" in text


def test_hub_load_local_and_github(hub_checkout):
    model = torch.hub.load(str(REPO), "acme_net_m", source="local", num_classes=3)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)
    model = torch.hub.load("owner/zoo", "acme_net_s", trust_repo=True, width=8)
    assert model.stem[0].out_channels == 8


def test_hubconf_finds_builtin_families_from_the_checkout_when_zoo_is_not_installed():
    """torch.hub users have no installed zoo: the built-in plugins come from pyproject.toml."""
    from conftest import run_python

    result = run_python(f"""
        import importlib.metadata as md
        real = md.entry_points
        def without_zoo(**kw):  # as if the zoo distribution were not installed
            if kw.get("group") != "zoo.plugins":
                return real(**kw)
            return md.EntryPoints([e for e in real(**kw) if not (e.dist and e.dist.metadata["Name"] == "zoo-models")])
        md.entry_points = without_zoo
        import torch
        import sys; sys.path.insert(0, {str(REPO)!r})
        import zoo
        infos = zoo.list_plugins()
        print(sorted((i.name, i.distribution, i.status) for i in infos))
        model = torch.hub.load({str(REPO)!r}, "resnet18", source="local", num_classes=3)
        print(tuple(model(torch.randn(1, 3, 64, 64)).shape))
    """)
    assert result.returncode == 0, result.stderr
    plugins, shape = result.stdout.strip().splitlines()
    assert ("vision", "zoo-models", "loaded") in eval(plugins)
    assert shape == "(1, 3)"
