"""Weights shipped inside a plugin's package (``package:PKG/path``), checked by sha256 like any other source."""
import hashlib

import pytest
import torch
from safetensors.torch import save

import zoo

PLUGIN = """
import zoo

def register(registry):
    registry.register(zoo.ModelCard(
        name="shipped_net", builder="shipped_zoo.models:build", task="image-classification", modality="image",
        input=zoo.ImageInput(size=8), head="fc", layer_groups=["fc"], num_features=3,
        weights={{"v1": zoo.WeightsCard(source={source!r}, sha256={sha256!r}, num_classes=2)}}, default_weights="v1",
    ))
"""
MODELS = """
import torch


class Net(torch.nn.Module):
    def __init__(self, num_classes=2):
        super().__init__()
        self.pool = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.fc = torch.nn.Linear(3, num_classes)

    def forward(self, x):
        return self.fc(self.pool(x))


def build(num_classes=2):
    return Net(num_classes)
"""
STATE = {"fc.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3), "fc.bias": torch.tensor([0.5, -0.5])}


def ship(site, monkeypatch, source="package:shipped_zoo/weights/net.safetensors", data=None):
    """Install a plugin distribution whose package holds its weights file; zoo stays offline."""
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    data = save(STATE) if data is None else data
    plugin = PLUGIN.format(source=source, sha256=hashlib.sha256(save(STATE)).hexdigest())
    root = site("shipped-zoo", {"shipped": "shipped_zoo:register"},
                {"shipped_zoo/__init__.py": plugin, "shipped_zoo/models.py": MODELS})
    (root / "shipped_zoo" / "weights").mkdir()
    (root / "shipped_zoo" / "weights" / "net.safetensors").write_bytes(data)
    return root / "shipped_zoo" / "weights" / "net.safetensors"


def test_weights_shipped_in_the_plugin_package_load_offline(site, monkeypatch):
    path = ship(site, monkeypatch)
    model = zoo.create("shipped_net", pretrained=True)
    torch.testing.assert_close(model.fc.weight, STATE["fc.weight"])
    assert zoo.card_of(model).extra["weights_location"] == str(path.resolve())
    assert zoo.testing.check_plugin("shipped").ok


def test_a_shipped_file_that_fails_its_sha256_is_refused_and_kept(site, monkeypatch):
    path = ship(site, monkeypatch, data=save({**STATE, "fc.bias": torch.zeros(2)}))
    with pytest.raises(zoo.WeightsError, match="sha256"):
        zoo.create("shipped_net", pretrained=True)
    assert path.is_file()  # a file of an installed package is never deleted
    with pytest.raises(zoo.testing.PluginCheckError, match=r"shipped_net: weights 'v1': .*sha256"):
        zoo.testing.check_plugin("shipped")


@pytest.mark.parametrize("source,message", [
    ("package:shipped_zoo/../outside.safetensors", "is not a file in a package"),
    ("package:not_an_installed_package_xyz/net.safetensors", "no installed package 'not_an_installed_package_xyz'"),
    ("package:os.path/net.safetensors", "is not a file in a package"),
])
def test_a_package_source_stays_inside_an_installed_package(site, monkeypatch, source, message):
    ship(site, monkeypatch, source=source)
    with pytest.raises(zoo.WeightsError, match=message):
        zoo.create("shipped_net", pretrained=True)


def test_a_link_out_of_the_package_is_refused(site, monkeypatch, tmp_path):
    outside = tmp_path / "outside.safetensors"
    outside.write_bytes(save(STATE))
    path = ship(site, monkeypatch)
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(zoo.WeightsError, match="leads out of package 'shipped_zoo'"):
        zoo.create("shipped_net", pretrained=True)
