"""torch.hub through its own code at the edges: autoload off, a checkout with a stale egg-info and zoo not
installed, and a speech model without torchaudio."""
import sys
import tomllib

import pytest
import torch
from conftest import REPO, run_python

import zoo
from zoo.registry import reset_default_registry


@pytest.fixture
def fresh_hubconf(monkeypatch):
    monkeypatch.delitem(sys.modules, "hubconf", raising=False)
    reset_default_registry()


def test_hub_with_autoload_off_names_the_switch_and_loads_what_it_allows(monkeypatch, fresh_hubconf):
    monkeypatch.setenv("ZOO_PLUGINS_AUTOLOAD", "0")
    with pytest.raises(zoo.UnknownModelError) as info:
        torch.hub.load(str(REPO), "create", "resnet18", source="local")
    assert "ZOO_PLUGINS_AUTOLOAD=0" in str(info.value)
    assert "load them with ZOO_PLUGINS_ALLOW=speech,text,timm,transformers,vision" in str(info.value)

    monkeypatch.setenv("ZOO_PLUGINS_ALLOW", "vision")
    monkeypatch.delitem(sys.modules, "hubconf", raising=False)
    reset_default_registry()
    model = torch.hub.load(str(REPO), "resnet18", source="local", num_classes=3)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 3)


def _egg_info(root):
    """The egg-info an earlier build leaves: zoo's entry points, naming packages not on sys.path."""
    with (REPO / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)["project"]
    folder = root / f"{project['name'].replace('-', '_')}.egg-info"
    folder.mkdir(parents=True)
    (folder / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: 0.0.1\n")
    entries = project["entry-points"]["zoo.plugins"]
    (folder / "entry_points.txt").write_text("[zoo.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    return root


def test_hub_from_a_checkout_with_an_egg_info_when_zoo_is_not_installed(tmp_path):
    result = run_python(f"""
        import sys
        # zoo is not installed: drop the editable install's finder; only a build's egg-info is left
        sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
        sys.path.insert(0, {str(_egg_info(tmp_path / "build"))!r})
        import torch
        model = torch.hub.load({str(REPO)!r}, "resnet18", source="local", num_classes=3)
        print(tuple(model(torch.randn(1, 3, 64, 64)).shape))
        import zoo
        print(zoo.__file__.startswith({str(REPO)!r}), sorted((i.name, i.status) for i in zoo.list_plugins()))
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    shape, plugins = result.stdout.strip().splitlines()
    assert shape == "(1, 3)"
    assert plugins == ("True [('speech', 'loaded'), ('text', 'loaded'), ('timm', 'loaded'), "
                       "('transformers', 'loaded'), ('vision', 'loaded')]")


def test_hub_speech_model_without_torchaudio_says_what_to_install():
    result = run_python(f"""
        import importlib.abc, sys

        class NoTorchaudio(importlib.abc.MetaPathFinder):  # only torch and torchvision installed
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "torchaudio":
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, NoTorchaudio())
        import torch
        try:
            torch.hub.load({str(REPO)!r}, "wav2vec2_base", source="local")
        except Exception as exc:
            print(f"{{type(exc).__name__}}: {{exc}}")
    """)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == ("PluginError: model 'wav2vec2_base' needs the Python package 'torchaudio', "
                                     "which is not installed; install it (pip install torchaudio) and try again")
