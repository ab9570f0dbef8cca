"""Loading: formats, the lean meta-device path, head handling, key maps, tied weights, fallbacks."""
from __future__ import annotations

import dataclasses

import pytest
import torch
from safetensors.torch import save_file
from weights_models import MODULE, TiedLM, install, isolate_caches, net_card, save_net, sha256

import zoo
from zoo.weights import read_state_dict
from zoo.weights.loading import parameters_on_meta


@pytest.fixture
def caches(monkeypatch, tmp_path):
    return isolate_caches(monkeypatch, tmp_path)


def _card_with(path, **weights_fields):
    return net_card(weights={"w": zoo.WeightsCard(source=str(path), **weights_fields)}, default="w")


def _outputs(model, x):
    model.eval()
    with torch.no_grad():
        return model(x)


# ---------------------------------------------------------------------------- formats


def test_pth_checkpoint_loads_with_weights_only(caches, tmp_path, monkeypatch):
    path = tmp_path / "net.pth"
    net, _ = save_net(path)
    install(monkeypatch, _card_with(path, num_classes=10))
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(_outputs(zoo.create("tnet", pretrained=True), x), net(x))


def test_training_checkpoint_wrapper_is_unwrapped(tmp_path):
    net, _ = save_net(tmp_path / "a.pth")
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, tmp_path / "ckpt.pth")
    state = read_state_dict(tmp_path / "ckpt.pth")
    assert set(state) == set(net.state_dict())


class Payload:
    """Anything but tensors: a pickle that would run code when unpickled without weights_only."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_with_code_is_refused(caches, tmp_path, monkeypatch, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"weight": torch.zeros(2), "payload": Payload()}, path)
    install(monkeypatch, _card_with(path))
    with pytest.raises(zoo.WeightsError, match="weights_only=True"):
        zoo.create("tnet", pretrained=True)
    assert "must never run" not in capsys.readouterr().out


# ---------------------------------------------------------------------------- the lean path


def test_meta_device_load_equals_plain_load(caches, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    net, _ = save_net(path)
    install(monkeypatch, _card_with(path, num_classes=10))
    model = zoo.create("tnet", pretrained=True)
    reference = type(net)(8, 10)
    reference.load_state_dict(read_state_dict(path))
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert all(p.requires_grad and isinstance(p, torch.nn.Parameter) for p in model.parameters())
    for (k, a), (k2, b) in zip(model.state_dict().items(), reference.state_dict().items()):
        assert k == k2 and a.dtype == b.dtype and torch.equal(a, b)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(_outputs(model, x), _outputs(reference, x))
    # training the model never writes into the (memory-mapped) weights file
    before = sha256(path)
    model.train()
    model(x).sum().backward()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert sha256(path) == before


def test_building_on_meta_allocates_no_parameters():
    from weights_models import Net

    with parameters_on_meta():
        net = Net(64, 1000)
    assert all(p.is_meta for p in net.parameters())
    assert not any(b.is_meta for b in net.buffers())  # buffers are real


def test_fallback_for_modules_that_cannot_be_built_on_meta(caches, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    net, _ = save_net(path)
    state = dict(net.state_dict(), scale=torch.tensor(1.0))
    save_file(state, str(path))
    card = dataclasses.replace(_card_with(path, num_classes=10), builder=f"{MODULE}:build_meta_hostile")
    install(monkeypatch, card)
    model = zoo.create("tnet", pretrained=True)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(_outputs(model, x), net(x))


def test_fallback_when_a_module_ignores_assignment(caches, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    net, _ = save_net(path)
    install(monkeypatch, dataclasses.replace(_card_with(path, num_classes=10), builder=f"{MODULE}:build_copying"))
    model = zoo.create("tnet", pretrained=True)
    assert torch.equal(model.classifier.weight, net.classifier.weight)  # loaded, not re-initialised


def test_dtype_of_file_is_converted_to_the_model(caches, tmp_path, monkeypatch):
    path = tmp_path / "half.safetensors"
    net, _ = save_net(tmp_path / "full.safetensors")
    save_file({k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()}, str(path))
    install(monkeypatch, _card_with(path, num_classes=10))
    model = zoo.create("tnet", pretrained=True)
    assert model.classifier.weight.dtype == torch.float32
    assert torch.allclose(model.classifier.weight, net.classifier.weight, atol=1e-2)


# ---------------------------------------------------------------------------- heads and strictness


def test_head_swap_on_load_keeps_backbone_and_new_head(caches, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    net, _ = save_net(path)
    install(monkeypatch, _card_with(path, num_classes=10))
    model = zoo.create("tnet", pretrained=True, num_classes=3)
    assert model.classifier.out_features == 3 and model.zoo_card.num_classes == 3
    assert not model.classifier.weight.is_meta and model.classifier.weight.abs().sum() > 0
    for key, value in net.state_dict().items():
        if not key.startswith("classifier."):
            assert torch.equal(model.state_dict()[key], value), key
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(model.pool(model.stage(model.stem(x))), net.pool(net.stage(net.stem(x))))
    assert zoo.create("tnet", pretrained=True, num_classes=0)(x).shape == (2, 16)


def test_keys_beyond_the_head_must_match(caches, tmp_path, monkeypatch):
    net, _ = save_net(tmp_path / "net.safetensors")
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("stage.0.")}
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "broken.safetensors"))
    install(monkeypatch, _card_with(tmp_path / "broken.safetensors", num_classes=10))
    with pytest.raises(zoo.WeightsError) as info:
        zoo.create("tnet", pretrained=True, num_classes=4)
    message = str(info.value)
    assert "missing keys: stage.0.weight, stage.0.bias" in message and "unexpected keys: extra.weight" in message


def test_head_keys_are_strict_when_class_counts_agree(caches, tmp_path, monkeypatch):
    net, _ = save_net(tmp_path / "net.safetensors")
    save_file({k: v for k, v in net.state_dict().items() if not k.startswith("classifier.")},
              str(tmp_path / "headless.safetensors"))
    install(monkeypatch, _card_with(tmp_path / "headless.safetensors", num_classes=10))
    with pytest.raises(zoo.WeightsError, match="classifier.weight"):
        zoo.create("tnet", pretrained=True)


def test_shape_mismatch_is_listed(caches, tmp_path, monkeypatch):
    save_net(tmp_path / "wide.safetensors", width=4)
    install(monkeypatch, _card_with(tmp_path / "wide.safetensors", num_classes=10))
    with pytest.raises(zoo.WeightsError, match=r"stem.0.weight \(file \(4, 3, 3, 3\), model \(8, 3, 3, 3\)\)"):
        zoo.create("tnet", pretrained=True)


# ---------------------------------------------------------------------------- key maps and tied weights


def rename_keys(state):
    return {k.replace("trunk.", "stem."): v for k, v in state.items()}


def test_weights_key_map_renames_a_foreign_checkpoint(caches, tmp_path, monkeypatch):
    net, _ = save_net(tmp_path / "net.safetensors")
    save_file({k.replace("stem.", "trunk."): v for k, v in net.state_dict().items()},
              str(tmp_path / "foreign.safetensors"))
    install(monkeypatch, _card_with(tmp_path / "foreign.safetensors", num_classes=10,
                                    key_map=f"{__name__}:rename_keys"))
    model = zoo.create("tnet", pretrained=True)
    for key, value in net.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_tied_weights_stay_tied_and_nonpersistent_buffers_are_real(caches, tmp_path, monkeypatch):
    torch.manual_seed(0)
    lm = TiedLM().eval()
    state = {k: v for k, v in lm.state_dict().items() if k != "decoder.weight"}  # stored once
    save_file(state, str(tmp_path / "lm.safetensors"))
    card = zoo.ModelCard(name="tlm", builder=f"{MODULE}:build_tied", task="feature-extraction", modality="text",
                         head="classifier", weights={"w": zoo.WeightsCard(source=str(tmp_path / "lm.safetensors"),
                                                                          num_classes=3)}, default_weights="w")
    install(monkeypatch, card)
    model = zoo.create("tlm", pretrained=True)
    assert model.decoder.weight is model.embed.weight
    assert torch.equal(model.positions, torch.arange(6))
    ids = torch.randint(0, 20, (2, 5))
    for a, b in zip(_outputs(model, ids), lm(ids)):
        assert torch.equal(a, b)
