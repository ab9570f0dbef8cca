"""``zoo.create("local-dir:...", features_only=True, out_indices=...)``: a model saved with `zoo.save_pretrained`
(after fine-tuning, with a head of its own) gives the same feature maps as the registered model with its weights."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from weights_models import install, net_card

import zoo
from zoo.errors import InvalidArgumentError

STAGES = [{"module": "stem", "channels": 8, "reduction": 2}, {"module": "stage", "channels": 16, "reduction": 4}]


def _trained(model: nn.Module, seed: int = 0) -> nn.Module:
    """`model` with every weight and BatchNorm statistic changed, as training would leave it."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            if tensor.is_floating_point():
                tensor.add_(torch.rand(tensor.shape, generator=gen) * 0.2)  # positive: variances stay valid
    return model.eval()


def _backbone_state(model: nn.Module, head: str) -> dict[str, torch.Tensor]:
    """A features-only model's state dict (keys under ``model.``) from a full model's, head left out."""
    return {f"model.{k}": v for k, v in model.state_dict().items() if not k.startswith(f"{head}.")}


def _assert_same_maps(saved: nn.Module, registered: nn.Module, x: torch.Tensor) -> None:
    with torch.no_grad():
        got, expected = saved(x), registered(x)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_saved_fine_tuned_model_gives_the_maps_of_the_registered_one(monkeypatch, tmp_path):
    install(monkeypatch, net_card(feature_stages=STAGES))
    tuned = _trained(zoo.create("tnet", num_classes=4))
    folder = zoo.save_pretrained(tuned, tmp_path / "saved", labels=["a", "b", "c", "d"])

    saved = zoo.create(f"local-dir:{folder}", features_only=True, out_indices=(0, -1)).eval()
    registered = zoo.create("tnet", features_only=True, out_indices=(0, 1)).eval()
    registered.load_state_dict(_backbone_state(tuned, "classifier"))  # strict: no head on either side

    assert not [k for k in saved.state_dict() if "classifier" in k]  # the 4-class head is left out
    assert saved.out_indices == (0, 1)
    assert saved.feature_info.get_dicts() == registered.feature_info.get_dicts()
    x = torch.randn(2, 3, 32, 32)
    _assert_same_maps(saved, registered, x)
    with torch.no_grad():  # and they are the fine-tuned model's own intermediate outputs
        stem = tuned.stem(x)
        torch.testing.assert_close(saved(x)[1], tuned.stage(stem), rtol=0, atol=0)


def test_a_saved_catalogue_model_gives_the_maps_of_the_registered_one(tmp_path):
    """A torchvision model from the catalogue, fine-tuned to 3 classes and saved: its stages come from the
    saved card, and the maps equal the registered model's with the same weights."""
    tuned = _trained(zoo.create("shufflenet_v2_x0_5", num_classes=3))
    folder = zoo.save_pretrained(tuned, tmp_path / "saved")

    saved = zoo.create(f"local-dir:{folder}", features_only=True, out_indices=(1, 2, -1)).eval()
    registered = zoo.create("shufflenet_v2_x0_5", features_only=True, out_indices=(1, 2, 4)).eval()
    registered.load_state_dict(_backbone_state(tuned, "fc"))

    assert saved.feature_info.channels() == [24, 48, 1024] and saved.feature_info.reduction() == [4, 8, 32]
    assert saved.feature_info.module_name() == registered.feature_info.module_name()
    x = torch.randn(1, 3, 64, 64)
    _assert_same_maps(saved, registered, x)
    assert [tuple(m.shape) for m in saved(x)] == [(1, 24, 16, 16), (1, 48, 8, 8), (1, 1024, 2, 2)]


def test_out_indices_of_a_saved_model_are_checked_against_its_stages(monkeypatch, tmp_path):
    install(monkeypatch, net_card(feature_stages=STAGES))
    folder = zoo.save_pretrained(zoo.create("tnet"), tmp_path / "saved")
    with pytest.raises(InvalidArgumentError, match=r"\[2\] out of range.*indices 0 to 1"):
        zoo.create(f"local-dir:{folder}", features_only=True, out_indices=(0, 2))
    with pytest.raises(InvalidArgumentError, match="needs features_only=True"):
        zoo.create(f"local-dir:{folder}", out_indices=(0,))


def test_num_classes_with_features_only_is_refused_for_a_saved_model_as_for_a_registered_one(monkeypatch, tmp_path):
    install(monkeypatch, net_card(feature_stages=STAGES))
    folder = zoo.save_pretrained(zoo.create("tnet"), tmp_path / "saved")
    with pytest.raises(InvalidArgumentError, match="leave out num_classes"):
        zoo.create("tnet", features_only=True, num_classes=3)
    with pytest.raises(InvalidArgumentError, match="leave out num_classes"):
        zoo.create(f"local-dir:{folder}", features_only=True, num_classes=3)
