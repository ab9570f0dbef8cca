"""`zoo download NAME[.TAG]` and the cached status in `zoo info`."""
from __future__ import annotations

import json

import pytest
from weights_models import fill_hf_cache, install, isolate_caches, net_card, save_net

import zoo
from zoo.cli import main


@pytest.fixture
def card_with_two_sources(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path)
    local = tmp_path / "net.safetensors"
    _, digest = save_net(local)
    fill_hf_cache(tmp_path / "hf" / "hub", "acme/tnet", {"model.safetensors": local.read_bytes()})
    install(monkeypatch, net_card(weights={
        "local": zoo.WeightsCard(source=str(local), sha256=digest),
        "hub": zoo.WeightsCard(source="hf-hub:acme/tnet", sha256=digest),
        "gone": zoo.WeightsCard(source="hf-hub:acme/gone"),
    }, default="local"))
    return local


def test_download_default_and_tagged_weights(card_with_two_sources, capsys):
    assert main(["download", "tnet", "tnet.hub"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"tnet.local: {card_with_two_sources}"
    assert out[1].startswith("tnet.hub: ") and out[1].endswith("model.safetensors")


def test_download_json_and_errors(card_with_two_sources, capsys):
    assert main(["download", "tnet.hub", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["name"] == "tnet.hub"
    assert main(["download", "tnet.gone"]) == 2
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err


def test_info_shows_whether_weights_are_cached(card_with_two_sources, capsys):
    assert main(["info", "tnet"]) == 0
    out = capsys.readouterr().out
    assert f"cached:        yes ({card_with_two_sources})" in out
    assert "cached:        no (zoo download tnet.gone)" in out
