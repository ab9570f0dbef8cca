"""`zoo.create(name, features_only=True, out_indices=...)`: feature maps from the stages a card declares."""
from __future__ import annotations

import math

import pytest
import torch
from weights_models import install, isolate_caches, net_card, save_net

import zoo
from zoo.cards import FeatureStage
from zoo.errors import CardError, InvalidArgumentError

STAGES = [{"module": "stem", "channels": 8, "reduction": 2}, {"module": "stage", "channels": 16, "reduction": 4}]


# ---------------------------------------------------------------------------- card data


def test_feature_stages_are_checked_card_data_that_round_trips():
    card = net_card(feature_stages=STAGES)
    assert card.feature_stages == (FeatureStage("stem", 8, 2), FeatureStage("stage", 16, 4))
    assert zoo.ModelCard.from_dict(card.to_dict()) == card
    assert card.to_dict()["feature_stages"] == STAGES
    with pytest.raises(CardError, match="reduction.*must be positive") as err:
        net_card(feature_stages=[{"module": "stem", "channels": 8, "reduction": 0}])
    assert err.value.field == "feature_stages[0]"
    with pytest.raises(CardError, match="more than once"):
        net_card(feature_stages=[STAGES[0], STAGES[0]])
    with pytest.raises(CardError, match="unknown field"):
        net_card(feature_stages=[{**STAGES[0], "stride": 2}])


def test_a_card_naming_a_stage_module_the_model_lacks_fails_at_create(monkeypatch):
    install(monkeypatch, net_card(feature_stages=[{"module": "stages.9", "channels": 8, "reduction": 2}]))
    with pytest.raises(CardError, match="feature_stages.*stages.9") as err:
        zoo.create("tnet")
    assert err.value.field == "feature_stages"


def test_the_vision_catalogue_declares_stages_without_torch():
    card = zoo.get_card("resnet50")
    assert [(s.module, s.channels, s.reduction) for s in card.feature_stages] == [
        ("relu", 64, 2), ("layer1", 256, 4), ("layer2", 512, 8), ("layer3", 1024, 16), ("layer4", 2048, 32)]
    convnets = [zoo.get_card(n) for n in zoo.list_models(modality="image") if zoo.get_card(n).builder.startswith(
        "torchvision.") and zoo.get_card(n).family not in ("vit", "swin", "swin_v2")]
    assert convnets and all(c.feature_stages for c in convnets)
    for c in convnets:
        assert [s.reduction for s in c.feature_stages] == sorted({s.reduction for s in c.feature_stages})


def test_token_and_channels_last_stages_are_card_data():
    vit = zoo.get_card("vit_l_16_512").feature_stages
    assert len(vit) == 24 and vit[0] == FeatureStage("encoder.layers.encoder_layer_0", 1024, 16, "NLC", 1)
    assert {(s.layout, s.prefix_tokens, s.reduction) for s in zoo.get_card("vit_h_14").feature_stages} == {
        ("NLC", 1, 14)}
    swin = zoo.get_card("swin_v2_b").feature_stages
    assert [(s.module, s.channels, s.reduction, s.layout) for s in swin] == [
        ("features.1", 128, 4, "NHWC"), ("features.3", 256, 8, "NHWC"), ("features.5", 512, 16, "NHWC"),
        ("features.7", 1024, 32, "NHWC")]


def test_nhwc_and_token_stages_come_back_nchw():
    import dataclasses

    class Tokens(torch.nn.Module):
        """8x8 patches of a 32x32 input: a channels-last 4x4 grid, then a class token and 16 patch tokens."""

        def __init__(self):
            super().__init__()
            self.patch = torch.nn.Conv2d(3, 8, 8, stride=8)
            self.grid = torch.nn.Identity()
            self.tokens = torch.nn.Identity()

        def forward(self, x):
            grid = self.grid(self.patch(x).permute(0, 2, 3, 1))
            tokens = self.tokens(torch.cat([torch.zeros(x.shape[0], 1, 8), grid.flatten(1, 2)], dim=1))
            return tokens[:, 0]

    model = Tokens()
    card = dataclasses.replace(net_card(), feature_stages=(
        FeatureStage("grid", 8, 8, "NHWC"), FeatureStage("tokens", 8, 8, "NLC", prefix_tokens=1)))
    x = torch.randn(2, 3, 32, 32)
    maps = zoo.features.features_model(model, card)(x)
    expected = model.patch(x)
    assert [tuple(m.shape) for m in maps] == [(2, 8, 4, 4), (2, 8, 4, 4)]
    torch.testing.assert_close(maps[0], expected)
    torch.testing.assert_close(maps[1], expected)
    with pytest.raises(zoo.ZooError, match="gave 16 tokens after its 1 prefix token.*needs 8x8"):
        zoo.features.features_model(model, dataclasses.replace(card, feature_stages=(
            FeatureStage("tokens", 8, 4, "NLC", prefix_tokens=1),)))(x)


def test_a_map_the_model_writes_over_in_place_is_returned_as_the_stage_gave_it():
    """Maps are copied only where needed (an in-place ReLU after a BatchNorm stage), in eval mode under
    inference mode as in training mode."""
    import dataclasses

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)
            self.relu = torch.nn.ReLU(inplace=True)
            self.block = torch.nn.Conv2d(4, 4, 3, stride=2, padding=1)

        def forward(self, x):
            return self.block(self.relu(self.bn(self.conv(x))))

    model = Net().eval()
    card = dataclasses.replace(net_card(), feature_stages=(FeatureStage("bn", 4, 2), FeatureStage("block", 4, 4)))
    x = torch.randn(2, 3, 16, 16)
    expected = model.bn(model.conv(x))
    assert (expected < 0).any()  # the ReLU would change it
    features = zoo.features.features_model(model, card).eval()
    for _ in range(2):  # the first call finds which maps need a copy, the second uses what it found
        with torch.inference_mode():
            maps = features(x)
        torch.testing.assert_close(maps[0], expected)
    assert features._overwritten == {0}
    features.train()
    torch.testing.assert_close(features(x)[0].detach(), model.bn(model.conv(x)).detach())


# ---------------------------------------------------------------------------- create


def test_features_only_returns_the_maps_of_out_indices_with_timm_style_feature_info(monkeypatch):
    install(monkeypatch, net_card(feature_stages=STAGES))
    full = zoo.create("tnet").eval()
    model = zoo.create("tnet", features_only=True).eval()
    model.load_state_dict({f"model.{k}": v for k, v in full.state_dict().items() if not k.startswith("classifier")})
    x = torch.randn(2, 3, 32, 32)
    maps = model(x)
    assert [tuple(m.shape) for m in maps] == [(2, 8, 16, 16), (2, 16, 8, 8)]
    torch.testing.assert_close(maps[1], full.stage(full.stem(x)))
    info = model.feature_info
    assert info.channels() == [8, 16] and info.reduction() == [2, 4] and info.module_name() == ["stem", "stage"]
    assert info.get_dicts() == [{"num_chs": 8, "reduction": 2, "module": "stem", "index": 0},
                                {"num_chs": 16, "reduction": 4, "module": "stage", "index": 1}]
    assert len(info) == 2 and info[1]["num_chs"] == 16
    last = zoo.create("tnet", features_only=True, out_indices=(-1,))
    assert last.feature_info.channels() == [16] and last.out_indices == (1,)
    assert [tuple(m.shape) for m in last(x)] == [(2, 16, 8, 8)]
    assert zoo.cards.card_of(model).num_classes == 0


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"features_only": True, "out_indices": (0, 2)}, r"\[2\] out of range.*indices 0 to 1.*0: stem \(8 ch, /2\)"),
    ({"features_only": True, "out_indices": (-3,)}, r"\[-3\] out of range"),
    ({"features_only": True, "out_indices": (1, -1)}, "more than once"),
    ({"features_only": True, "out_indices": 1}, "list or tuple"),
    ({"out_indices": (0,)}, "needs features_only=True"),
    ({"features_only": True, "num_classes": 5}, "leave out num_classes"),
    ({"features_only": "yes"}, "True or False"),
])
def test_bad_feature_options_are_errors_before_any_build(monkeypatch, kwargs, message):
    install(monkeypatch, net_card(feature_stages=STAGES))
    with pytest.raises(InvalidArgumentError, match=message):
        zoo.create("tnet", **kwargs)


def test_a_card_without_stages_says_so(monkeypatch):
    install(monkeypatch, net_card())
    with pytest.raises(InvalidArgumentError, match="declares no feature stages"):
        zoo.create("tnet", features_only=True)


def test_pretrained_weights_load_into_a_features_only_model_without_its_head(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path)
    net, digest = save_net(tmp_path / "w.safetensors")
    weights = {"v1": {"source": str(tmp_path / "w.safetensors"), "sha256": digest, "num_classes": 10}}
    install(monkeypatch, net_card(weights=weights, default="v1", feature_stages=STAGES))
    model = zoo.create("tnet", pretrained=True, features_only=True, out_indices=(0, 1)).eval()
    assert not [k for k in model.state_dict() if "classifier" in k]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        stem = net.stem(x)
        expected = [stem, net.stage(stem)]
        for got, want in zip(model(x), expected, strict=True):
            torch.testing.assert_close(got, want)


def test_the_example_plugin_declares_its_stages(acme):
    model = zoo.create("acme_net_m", features_only=True, out_indices=(0, -1)).eval()
    assert model.feature_info.channels() == [32, 64] and model.feature_info.reduction() == [2, 8]
    assert [tuple(m.shape) for m in model(torch.randn(1, 3, 64, 64))] == [(1, 32, 32, 32), (1, 64, 8, 8)]


def test_resnet50_features_equal_timms_with_the_same_weights():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    ours = zoo.create("resnet50", features_only=True).eval()
    theirs = timm.create_model("resnet50", features_only=True, pretrained=False).eval()
    state = {k.removeprefix("model."): v for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)  # strict: the same keys, and no head on either side
    assert ours.feature_info.channels() == theirs.feature_info.channels()
    assert ours.feature_info.reduction() == theirs.feature_info.reduction()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        for a, b in zip(ours(x), theirs(x), strict=True):
            torch.testing.assert_close(a, b)


# ---------------------------------------------------------------------------- the whole catalogue


def _catalogue_with_stages() -> list[str]:
    return [n for n in zoo.list_models(modality="image")
            if zoo.get_card(n).builder.startswith("torchvision.") and zoo.get_card(n).feature_stages
            and zoo.get_card(n).recipe is None]  # recipes (fine-tunes) need num_classes


@pytest.mark.slow
@pytest.mark.parametrize("name", _catalogue_with_stages())
def test_every_catalogue_card_with_stages_gives_its_maps(name):
    card = zoo.get_card(name)
    model = zoo.create(name, features_only=True).eval()
    side = max(224, int(card.extra.get("min_size", 0)))
    with torch.no_grad():
        maps = model(torch.zeros(1, 3, side, side))
    assert [m.shape[1] for m in maps] == [s.channels for s in card.feature_stages]
    for m, stage in zip(maps, card.feature_stages, strict=True):
        assert abs(math.log2(side / m.shape[-1]) - math.log2(stage.reduction)) < 0.5, (stage, m.shape)
