"""Folder formats plugins read: a card names the config.json key of its library's checkpoint folders and the reader
that turns one into a card (extra["saved_folder_key"], extra["saved_folder_reader"]); zoo asks no family by name."""
from __future__ import annotations

import json
import sys

import pytest
import torch
from safetensors.torch import save_file

import zoo
from zoo.errors import UntrustedCodeError, WeightsError

LENS = {
    "lens_plugin/__init__.py": """
        import zoo

        def register(registry):
            registry.register(zoo.ModelCard(
                name="lens_net", builder="lens_plugin.models:build", task="image-classification", modality="image",
                defaults={"width": 2, "num_classes": 3}, head="fc", layer_groups=["body", "fc"],
                extra={"saved_folder_key": "architecture", "saved_folder_reader": "lens_plugin.folder:read"}))
        """,
    "lens_plugin/models.py": """
        import torch

        class Lens(torch.nn.Module):
            def __init__(self, width, num_classes):
                super().__init__()
                self.body = torch.nn.Linear(4, width)
                self.fc = torch.nn.Linear(width, num_classes)

            def forward(self, x):
                return self.fc(self.body(x))

        def build(width=2, num_classes=3):
            return Lens(width, num_classes)
        """,
    "lens_plugin/folder.py": """
        import dataclasses
        import zoo

        def read(config, directory):
            card = zoo.get_card(config["architecture"])
            builder = config.get("builder", card.builder)  # a reader that lets the folder choose code
            return dataclasses.replace(card, builder=builder, defaults={**card.defaults, "width": config["width"]})
        """,
}


def lens_folder(directory, **config):
    """A checkpoint folder as the lens library writes it: its own config.json keys and safetensors weights."""
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({"architecture": "lens_net", "width": 5, **config}))
    torch.manual_seed(0)
    state = {"body.weight": torch.randn(5, 4), "body.bias": torch.randn(5),
             "fc.weight": torch.randn(3, 5), "fc.bias": torch.randn(3)}
    save_file(state, str(directory / "model.safetensors"))
    return state


def timm_style_folder(directory):
    """config.json as timm writes it (no weights needed: the folder is refused before they are read)."""
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps({
        "architecture": "resnet18", "num_classes": 2, "label_names": ["cat", "dog"],
        "pretrained_cfg": {"input_size": [3, 160, 160], "crop_pct": 0.875, "interpolation": "bilinear"}}))


@pytest.fixture
def lens(site, monkeypatch):
    site("lens-zoo", {"lens": "lens_plugin:register"}, LENS)
    return site


def test_a_plugins_folder_format_loads_with_its_weights_and_imports_its_reader_only_then(lens, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_PLUGINS_BLOCK", "timm")  # the only reader of key 'architecture' is lens's
    state = lens_folder(tmp_path / "ckpt")
    assert "lens_net" in zoo.list_models() and "lens_plugin.folder" not in sys.modules
    model = zoo.create(f"local-dir:{tmp_path / 'ckpt'}").eval()
    assert "lens_plugin.folder" in sys.modules
    assert model.zoo_card.name == "lens_net" and model.zoo_card.defaults["width"] == 5
    x = torch.randn(2, 4)
    with torch.no_grad():
        torch.testing.assert_close(model(x), x @ state["body.weight"].T @ state["fc.weight"].T
                                   + state["body.bias"] @ state["fc.weight"].T + state["fc.bias"])


def test_a_format_may_be_marked_by_any_key_and_a_config_of_no_known_format_is_refused(site, tmp_path):
    lens = {k: v.replace('"architecture"', '"lens_arch"') for k, v in LENS.items()}
    site("lens-zoo", {"lens": "lens_plugin:register"}, lens)
    lens_folder(tmp_path / "ckpt")
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    config["lens_arch"] = config.pop("architecture")
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(config))
    assert zoo.get_card(f"local-dir:{tmp_path / 'ckpt'}").defaults["width"] == 5
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps({"hidden": 3}))
    with pytest.raises(WeightsError, match=r"its keys: 'hidden'.*key 'architecture' \(zoo_timm\.folder\), "
                                           r"key 'lens_arch' \(lens_plugin\.folder\)"):
        zoo.get_card(f"local-dir:{tmp_path / 'ckpt'}")


def test_a_reader_cannot_make_the_folder_choose_code_no_plugin_registered(lens, monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_PLUGINS_BLOCK", "timm")
    lens_folder(tmp_path / "ckpt", builder="os:system")
    with pytest.raises(UntrustedCodeError, match="os:system"):
        zoo.create(f"local-dir:{tmp_path / 'ckpt'}")


def test_two_plugins_reading_one_key_differently_is_an_error_naming_both(lens, tmp_path):
    timm_style_folder(tmp_path / "ckpt")
    with pytest.raises(WeightsError, match=r"lens_plugin\.folder:read.*zoo_timm\.folder:folder_card"):
        zoo.get_card(f"local-dir:{tmp_path / 'ckpt'}")


def test_a_timm_folder_without_the_timm_family_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("ZOO_PLUGINS_BLOCK", "timm")
    timm_style_folder(tmp_path / "ckpt")
    with pytest.raises(WeightsError) as err:
        zoo.create(f"local-dir:{tmp_path / 'ckpt'}")
    message = str(err.value)
    assert "no installed plugin reads its format" in message and "'architecture'" in message
    assert "timm (disabled)" in message and "zoo plugins" in message


def test_a_timm_folders_card_reads_without_weights_or_timm(tmp_path):
    timm_style_folder(tmp_path / "ckpt")
    card = zoo.get_card(f"local-dir:{tmp_path / 'ckpt'}")
    assert card.name == "timm/resnet18" and card.num_classes == 2 and card.default_weights is None
    assert zoo.cards.card_labels(card) == ["cat", "dog"]
    assert (card.input.size, card.input.resize_size, card.input.interpolation) == (160, 182, "bilinear")
    assert card.extra["saved_folder_reader"] == "zoo_timm.folder:folder_card"
