"""torchvision's weights= maps to zoo's weights tags, loaded and checked by zoo (never downloaded behind its back)."""
import pytest
import torch
import torchvision
from test_vision_finetune import install_checkpoint

import zoo


@pytest.fixture
def no_torchvision_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torchvision downloaded weights itself")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


@pytest.fixture
def regnet_checkpoint(tmp_path, monkeypatch, no_torchvision_download):
    """regnet_x_400mf's default weights (imagenet1k_v2, torchvision's DEFAULT) in the offline torch hub cache."""
    torch.manual_seed(0)
    state = torchvision.models.regnet_x_400mf().state_dict()
    install_checkpoint(tmp_path, monkeypatch, "regnet_x_400mf", state)
    return state


def test_torchvision_weights_values_load_zoos_tag_through_zoo(regnet_checkpoint):
    enum = torchvision.models.RegNet_X_400MF_Weights
    for weights in ("DEFAULT", "IMAGENET1K_V2", "RegNet_X_400MF_Weights.IMAGENET1K_V2", enum.IMAGENET1K_V2,
                    enum.DEFAULT, "imagenet1k_v2"):
        model = zoo.create("regnet_x_400mf", weights=weights)
        card = zoo.card_of(model)
        assert card.default_weights == "imagenet1k_v2" and card.extra["weights_location"].endswith(".pth"), weights
        torch.testing.assert_close(model.stem[0].weight, regnet_checkpoint["stem.0.weight"])


def test_other_torchvision_weights_go_through_zoos_offline_cache(regnet_checkpoint):
    with pytest.raises(zoo.WeightsError, match="offline mode is on"):  # V1 is not cached, and zoo is offline
        zoo.create("regnet_x_400mf", weights="IMAGENET1K_V1")


def test_weights_none_builds_without_weights_as_torchvision_does(no_torchvision_download):
    assert zoo.card_of(zoo.create("resnet18", weights=None)).default_weights is None


@pytest.mark.parametrize("weights", ["IMAGENET1K_V9", torchvision.models.ResNet50_Weights.DEFAULT, 3])
def test_unknown_weights_are_refused_with_zoos_spelling(weights, no_torchvision_download):
    with pytest.raises(zoo.InvalidArgumentError) as info:
        zoo.create("resnet18", weights=weights)
    message = str(info.value)
    assert f"model 'resnet18' has no weights weights={weights!r}" in message
    assert "pretrained=True for the default (imagenet1k_v1)" in message
    assert "zoo.create('resnet18.TAG', pretrained=True) with TAG one of: imagenet1k_v1" in message
    assert "Accepted as weights=: DEFAULT, IMAGENET1K_V1" in message


def test_weights_built_for_another_input_size_name_their_card(no_torchvision_download):
    with pytest.raises(zoo.InvalidArgumentError, match=r"zoo.create\('vit_b_16_384.imagenet1k_swag_e2e_v1', "
                                                       r"pretrained=True\)"):
        zoo.create("vit_b_16", weights="IMAGENET1K_SWAG_E2E_V1")


@pytest.mark.parametrize("other", [{"pretrained": False}, {}])
def test_weights_that_contradict_other_arguments_are_refused(other, no_torchvision_download):
    name = "resnet50.imagenet1k_v1" if not other else "resnet50"
    with pytest.raises(zoo.InvalidArgumentError, match="pass one of them"):
        zoo.create(name, weights="IMAGENET1K_V2", **other)


def test_a_saved_model_refuses_the_builders_weights_keyword(tmp_path, no_torchvision_download):
    zoo.save_pretrained(zoo.create("squeezenet1_1", num_classes=3), tmp_path / "saved")
    with pytest.raises(zoo.InvalidArgumentError, match="a saved model loads its own weights"):
        zoo.create(f"local-dir:{tmp_path / 'saved'}", weights="DEFAULT")
