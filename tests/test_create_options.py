"""`zoo.create`'s create-time options (drop_rate, drop_path_rate, global_pool, in_chans, img_size, checkpoint_path,
device, dtype), mapped per model by its card's `create_options`; pretrained weights are written here as safetensors."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn
from weights_models import install, isolate_caches, net_card, save_net, sha256

import zoo
import zoo.weights.loading
from zoo.create_options import POOL_TYPES, supported
from zoo.errors import CardError, InvalidArgumentError, WeightsError
from zoo.model_options import adapted_conv_weight, resampled_position_embedding
from zoo_vision.catalog import model_cards
from zoo_vision.options import create_options as vision_options

MODULE = __name__


def pretrained(tmp_path: Path, card: zoo.ModelCard, state: dict[str, torch.Tensor], **fields) -> zoo.ModelCard:
    """`card` with one set of weights: `state` written as a safetensors file, its sha256 on the card."""
    path = tmp_path / f"{card.name}.safetensors"
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    classes = fields.pop("num_classes", card.class_count())
    weights = zoo.WeightsCard(source=str(path), sha256=sha256(path), num_classes=classes)
    return dataclasses.replace(card, weights={"v1": weights}, default_weights="v1", **fields)


def vision_card(name: str) -> zoo.ModelCard:
    return next(c for c in model_cards() if c.name == name)


def random_state(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    """`model`'s state with every float tensor random (BatchNorm statistics too), so a wrong load shows."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, value in model.state_dict().items():
        if value.is_floating_point():
            value = torch.rand(value.shape, generator=generator) * 0.5 + (0.5 if key.endswith("running_var") else -0.25)
        state[key] = value
    return state


@pytest.fixture
def resnet18(tmp_path, monkeypatch):
    """resnet18 with pretrained (random) weights in a local safetensors file: (the state, the original model)."""
    isolate_caches(monkeypatch, tmp_path)
    reference = torchvision.models.resnet18().eval()
    state = random_state(reference)
    reference.load_state_dict(state)
    install(monkeypatch, pretrained(tmp_path, vision_card("resnet18"), state))
    return state, reference


TINY_VIT = {"image_size": 32, "patch_size": 8, "num_layers": 1, "num_heads": 2, "hidden_dim": 16, "mlp_dim": 32,
            "num_classes": 10}


def tiny_vit_card(**fields) -> zoo.ModelCard:
    """A small torchvision ViT with the vit family's options from the vision catalogue (patch 8 from the name)."""
    return zoo.ModelCard(name="vit_t_8", builder="torchvision.models.vision_transformer:VisionTransformer",
                         task="image-classification", modality="image", family="vit", defaults=TINY_VIT,
                         input=zoo.ImageInput(size=32, resize_size=36), head="heads.head",
                         create_options=vision_options("vit_t_8", "vit"), **fields)


# ---------------------------------------------------------------------------- which options a model takes


def test_a_card_lists_its_options_and_the_universal_ones_without_torch():
    assert supported(zoo.get_card("resnet50")) == ("global_pool", "in_chans", "checkpoint_path", "device", "dtype")
    assert supported(zoo.get_card("vit_b_16")) == ("drop_rate", "in_chans", "img_size", "checkpoint_path", "device",
                                                   "dtype")
    assert set(supported(zoo.get_card("efficientnet_b0"))) >= {"drop_rate", "drop_path_rate", "global_pool"}
    assert zoo.get_card("bert_base_uncased").create_options["drop_rate"] == {"keyword": "dropout"}
    assert zoo.get_card("wav2vec2_base_cls").create_options["drop_path_rate"] == {"keyword": "encoder_layer_drop"}


def test_an_option_the_model_does_not_take_names_the_model_and_what_it_takes():
    with pytest.raises(InvalidArgumentError) as info:
        zoo.create("resnet18", drop_path_rate=0.1)
    assert str(info.value).startswith("model 'resnet18' does not take drop_path_rate=0.1; its create-time options "
                                      "are: global_pool, in_chans, checkpoint_path, device, dtype")


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("efficientnet_b0", {"drop_rate": -0.1}, "drop_rate is a probability, a number from 0 to below 1"),
    ("efficientnet_b0", {"drop_path_rate": 1.5}, "drop_path_rate is a probability"),
    ("efficientnet_b0", {"drop_rate": True}, "drop_rate is a probability"),
    ("resnet18", {"global_pool": "mean"}, "global_pool='mean' is not one it takes; accepted: 'avg', 'max', "
                                          "'avgmax', ''"),
    ("mobilenet_v3_small", {"global_pool": ""}, "accepted: 'avg', 'max', 'avgmax'$"),
    ("resnet18", {"in_chans": 0}, "in_chans is the number of input channels, an integer from 1 to 1024"),
    ("vit_b_16", {"img_size": 100}, "img_size=100 must be a multiple of its patch size 16"),
    ("vit_b_16", {"img_size": -1}, "img_size is the input side in pixels"),
    ("resnet18", {"global_pool": ""}, "pass num_classes=0 too"),
    ("resnet18", {"device": "nowhere"}, "device must be a torch device such as 'cpu', 'cuda'"),
    ("resnet18", {"dtype": torch.int64}, "dtype must be a floating-point torch dtype: torch.float32, torch.bfloat16"),
    ("resnet18", {"checkpoint_path": 3}, "checkpoint_path is the path of a local weights file"),
])
def test_bad_values_are_errors_listing_what_is_accepted(name, kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        zoo.create(name, **kwargs)


@pytest.mark.parametrize(("spec", "message"), [
    ({"module": "nowhere"}, "names 'nowhere', which is no module"),
    ({"module": "features.0"}, "'features.0', which is a Conv2d in the built SqueezeNet, not a global pooling layer"),
    ({"keyword": "x", "module": "avgpool"}, "needs exactly one of"),
    ({"modules": ["avgpool"]}, "needs exactly one of 'keyword' or 'module'"),
    ({"module": "avgpool", "values": ["median"]}, "'values' must be a non-empty subset"),
])
def test_a_malformed_card_spec_is_a_card_error_naming_the_model(monkeypatch, spec, message):
    card = vision_card("squeezenet1_1")
    install(monkeypatch, dataclasses.replace(card, create_options={"global_pool": spec}))
    with pytest.raises(CardError, match=message) as info:
        zoo.create("squeezenet1_1", global_pool="max", num_classes=0)
    assert "the card of model 'squeezenet1_1'" in str(info.value) and info.value.field == "create_options"


# ---------------------------------------------------------------------------- drop_rate, drop_path_rate


def test_drop_rates_reach_the_dropout_and_stochastic_depth_through_builder_keywords():
    model = zoo.create("efficientnet_b0", drop_rate=0.3, drop_path_rate=0.4)
    assert model.classifier[0].p == 0.3
    depths = [m.p for m in model.modules() if isinstance(m, torchvision.ops.StochasticDepth)]
    assert depths[0] == 0 and max(depths) == pytest.approx(0.4 * 15 / 16)  # torchvision's own schedule
    default = [m.p for m in zoo.create("efficientnet_b0").modules() if isinstance(m, torchvision.ops.StochasticDepth)]
    assert max(default) == pytest.approx(0.2 * 15 / 16)


def test_drop_path_rate_rises_linearly_over_the_stochastic_depth_modules_a_card_lists():
    model = zoo.create("swin_t", drop_path_rate=0.3)
    rates = [m.p for name, m in model.named_modules() if name.endswith(".stochastic_depth")]
    assert len(rates) == 12
    assert rates == pytest.approx([0.3 * i / 11 for i in range(12)])


def test_drop_rate_sets_the_dropout_modules_a_card_lists(monkeypatch):
    card = vision_card("squeezenet1_1")
    install(monkeypatch, dataclasses.replace(card, create_options={"drop_rate": {"modules": ["classifier.0"]}}))
    assert zoo.create("squeezenet1_1", drop_rate=0.125).classifier[0].p == 0.125
    install(monkeypatch, dataclasses.replace(card, create_options={"drop_rate": {"modules": ["classifier.1"]}}))
    with pytest.raises(CardError, match=r"\['classifier.1'\] have no rate 'p'"):
        zoo.create("squeezenet1_1", drop_rate=0.1)


def test_text_and_speech_cards_map_drop_rates_to_their_dropout_keywords():
    small = {"num_layers": 1, "hidden_size": 32, "num_heads": 2, "intermediate_size": 64, "vocab_size": 100}
    text = zoo.create("bert_encoder", drop_rate=0.25, **small)
    assert {m.p for name, m in text.named_modules() if isinstance(m, nn.Dropout) and "pool" not in name} == {0.25}
    assert zoo.create("lstm_classifier", drop_rate=0.4).drop.p == 0.4
    speech = zoo.create("wav2vec2_base_cls", drop_path_rate=0.15, drop_rate=0.2)
    assert speech.encoder.transformer.layer_drop == 0.15
    assert speech.encoder.transformer.dropout.p == 0.2
    assert zoo.create("kws_cnn_s", drop_rate=0.3).pool[2].p == 0.3


# ---------------------------------------------------------------------------- global_pool


def test_global_pool_values_change_the_pooling():
    x = torch.randn(2, 3, 64, 64)
    pooled = {}
    for pool in POOL_TYPES:
        torch.manual_seed(0)
        model = zoo.create("resnet18", global_pool=pool, num_classes=0).eval()
        with torch.no_grad():
            pooled[pool] = model(x)
    assert pooled["avg"].shape == pooled["max"].shape == (2, 512)
    assert not torch.allclose(pooled["avg"], pooled["max"])
    torch.testing.assert_close(pooled["avgmax"], (pooled["avg"] + pooled["max"]) / 2)
    assert pooled[""].shape == (2, 512, 2, 2)  # "" returns the unpooled map
    torch.testing.assert_close(pooled[""].mean((2, 3)), pooled["avg"])
    torch.testing.assert_close(pooled[""].amax((2, 3)), pooled["max"])


def test_global_pool_keeps_the_head_working():
    torch.manual_seed(0)
    avg = zoo.create("resnet18", num_classes=4).eval()
    torch.manual_seed(0)
    maxed = zoo.create("resnet18", global_pool="max", num_classes=4).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        features = avg.layer4(avg.layer3(avg.layer2(avg.layer1(avg.maxpool(avg.relu(avg.bn1(avg.conv1(x))))))))
        torch.testing.assert_close(maxed(x), avg.fc(features.amax((2, 3))))
    unpooled = zoo.create("convnext_tiny", global_pool="", num_classes=0).eval()
    assert unpooled(torch.randn(1, 3, 64, 64)).shape == (1, 768, 2, 2)


# ---------------------------------------------------------------------------- in_chans


def test_in_chans_1_on_pretrained_weights_equals_the_rgb_model_on_the_grey_image_repeated(resnet18):
    state, reference = resnet18
    grey = zoo.create("resnet18", pretrained=True, in_chans=1).eval()
    assert grey.conv1.in_channels == 1
    torch.testing.assert_close(grey.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(grey(x), reference(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4)


def test_in_chans_5_repeats_the_rgb_weights_cyclically_rescaled_by_3_over_5(resnet18):
    state, _ = resnet18
    model = zoo.create("resnet18", pretrained=True, in_chans=5).eval()
    rgb = state["conv1.weight"]
    expected = torch.cat([rgb, rgb[:, :2]], dim=1) * (3 / 5)
    torch.testing.assert_close(model.conv1.weight, expected)
    torch.testing.assert_close(model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    assert model(torch.randn(1, 5, 64, 64)).shape == (1, 1000)


def test_conv_weight_adaptation_follows_timms_rule():
    weight = torch.randn(4, 3, 3, 3)
    torch.testing.assert_close(adapted_conv_weight(weight, 1), weight.sum(1, keepdim=True))
    torch.testing.assert_close(adapted_conv_weight(weight, 2), weight[:, :2] * 1.5)
    torch.testing.assert_close(adapted_conv_weight(weight, 6), torch.cat([weight, weight], 1) * 0.5)
    assert adapted_conv_weight(weight, 3) is weight


def test_the_example_plugin_takes_in_chans_and_global_pool(acme):
    model = zoo.create("acme_net_s", in_chans=1, global_pool="max").eval()
    assert model.stem[0].in_channels == 1 and model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    assert zoo.create("acme_net_s", global_pool="", num_classes=0)(torch.randn(1, 3, 64, 64)).shape == (1, 32, 8, 8)


# ---------------------------------------------------------------------------- img_size


@pytest.fixture
def tiny_vit(tmp_path, monkeypatch):
    """The tiny ViT with pretrained (random) weights for 32x32 inputs in a local safetensors file."""
    isolate_caches(monkeypatch, tmp_path)
    torch.manual_seed(0)
    reference = torchvision.models.VisionTransformer(**TINY_VIT).eval()
    state = random_state(reference)
    reference.load_state_dict(state)
    install(monkeypatch, pretrained(tmp_path, tiny_vit_card(), state))
    return state, reference


def test_img_size_at_the_original_size_keeps_the_output(tiny_vit):
    _, reference = tiny_vit
    model = zoo.create("vit_t_8", pretrained=True, img_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_img_size_resamples_the_position_embedding_and_runs_at_the_new_size(tiny_vit):
    state, _ = tiny_vit
    model = zoo.create("vit_t_8", pretrained=True, img_size=64).eval()
    embedding = model.encoder.pos_embedding
    assert embedding.shape == (1, 1 + 8 * 8, 16)
    torch.testing.assert_close(embedding[:, :1], state["encoder.pos_embedding"][:, :1])  # class token kept
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)
    assert model.zoo_card.input.size == 64 and model.zoo_card.input.resize_size == 72


def test_position_embedding_resampling_is_bicubic_on_the_patch_grid():
    constant = torch.cat([torch.randn(1, 1, 4), torch.full((1, 16, 4), 0.5)], dim=1)
    bigger = resampled_position_embedding(constant, (6, 6), 1, "test")
    assert bigger.shape == (1, 37, 4)
    torch.testing.assert_close(bigger[:, 1:], torch.full((1, 36, 4), 0.5))
    grid = torch.arange(16.0).reshape(1, 16, 1)
    reference = nn.functional.interpolate(grid.reshape(1, 1, 4, 4), size=(8, 8), mode="bicubic", align_corners=False,
                                          antialias=True)
    torch.testing.assert_close(resampled_position_embedding(grid, (8, 8), 0, "test"), reference.reshape(1, 64, 1))
    with pytest.raises(WeightsError, match="not a square grid"):
        resampled_position_embedding(torch.zeros(1, 1 + 15, 4), (4, 4), 1, "test")


# ---------------------------------------------------------------------------- checkpoint_path


def test_checkpoint_path_loads_a_safetensors_file(monkeypatch, tmp_path):
    install(monkeypatch, net_card())
    net, _ = save_net(tmp_path / "w.safetensors")
    model = zoo.create("tnet", checkpoint_path=tmp_path / "w.safetensors").eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), net(x))
    assert zoo.card_of(model).extra["weights_location"] == str(tmp_path / "w.safetensors")


def test_checkpoint_path_is_head_aware(monkeypatch, tmp_path):
    install(monkeypatch, net_card())
    net, _ = save_net(tmp_path / "w4.safetensors", num_classes=4)
    mine = zoo.create("tnet", checkpoint_path=str(tmp_path / "w4.safetensors"))  # the file's class count
    assert mine.classifier.out_features == 4 and zoo.card_of(mine).num_classes == 4
    torch.testing.assert_close(mine.classifier.weight, net.classifier.weight)
    other = zoo.create("tnet", checkpoint_path=tmp_path / "w4.safetensors", num_classes=7)
    assert other.classifier.out_features == 7
    torch.testing.assert_close(other.stage[0].weight, net.stage[0].weight)  # all but the head loaded


def test_checkpoint_path_verifies_keys_like_the_rest_of_zoo(monkeypatch, tmp_path):
    install(monkeypatch, net_card())
    net, _ = save_net(tmp_path / "w.safetensors")
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("stage.0.")}
    save_file({**state, "extra.weight": torch.zeros(1)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(WeightsError, match=r"missing keys: stage.0.weight, stage.0.bias; unexpected keys: extra"):
        zoo.create("tnet", checkpoint_path=tmp_path / "bad.safetensors")
    with pytest.raises(WeightsError, match="no such file or folder"):
        zoo.create("tnet", checkpoint_path=tmp_path / "missing.safetensors")
    with pytest.raises(InvalidArgumentError, match="pass one of them"):
        zoo.create("tnet", checkpoint_path=tmp_path / "w.safetensors", pretrained=True)


def test_checkpoint_path_refuses_a_pickle_checkpoint_without_unpickling_it(monkeypatch, tmp_path):
    install(monkeypatch, net_card())
    save_net(tmp_path / "w.pth")

    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(WeightsError, match=r"is not a safetensors file.*safetensors.torch.save_file\(torch.load"):
        zoo.create("tnet", checkpoint_path=tmp_path / "w.pth")


def test_checkpoint_path_takes_a_saved_folder_and_checks_its_sha256(monkeypatch, tmp_path):
    install(monkeypatch, net_card())
    torch.manual_seed(3)
    saved = zoo.create("tnet", num_classes=3).eval()
    zoo.save_pretrained(saved, tmp_path / "saved")
    model = zoo.create("tnet", checkpoint_path=tmp_path / "saved").eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), saved(x))
    weights = tmp_path / "saved" / "model.safetensors"
    state = {k: v.clone() for k, v in zoo.weights.formats.read_state_dict(weights).items()}
    state["classifier.bias"] += 1
    save_file(state, str(weights))
    with pytest.raises(WeightsError, match="was changed after saving"):
        zoo.create("tnet", checkpoint_path=tmp_path / "saved")


def prefixed_keys(state: dict) -> dict:
    """A key map: the file's keys carry a "net." prefix that the model's do not."""
    return {k.removeprefix("net."): v for k, v in state.items()}


def test_checkpoint_path_in_the_weights_original_layout_goes_through_their_key_map(monkeypatch, tmp_path):
    net, digest = save_net(tmp_path / "w.safetensors")
    weights = {"v1": {"source": str(tmp_path / "w.safetensors"), "sha256": digest, "num_classes": 10,
                      "key_map": f"{MODULE}:prefixed_keys"}}
    install(monkeypatch, net_card(weights=weights, default="v1"))
    save_file({f"net.{k}": v for k, v in net.state_dict().items()}, str(tmp_path / "layout.safetensors"))
    for path in ("layout.safetensors", "w.safetensors"):  # the original layout and the model's own keys
        model = zoo.create("tnet", checkpoint_path=tmp_path / path)
        torch.testing.assert_close(model.stage[0].weight, net.stage[0].weight)


# ---------------------------------------------------------------------------- device and dtype


def test_dtype_builds_on_meta_and_loads_the_file_straight_into_bfloat16(resnet18, monkeypatch):
    state, _ = resnet18
    seen = []
    load_into = zoo.weights.loading.load_into

    def spy(model, loaded, *, on_meta, **kwargs):
        seen.append((on_meta, {v.dtype for v in loaded.values() if v.is_floating_point()}))
        return load_into(model, loaded, on_meta=on_meta, **kwargs)

    monkeypatch.setattr(zoo.weights.loading, "load_into", spy)
    model = zoo.create("resnet18", pretrained=True, dtype=torch.bfloat16, device="cpu").eval()
    assert seen == [(True, {torch.bfloat16})]  # built on meta, the file's tensors cast once: no float32 model
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.bn1.running_var.dtype == torch.bfloat16 and model.bn1.num_batches_tracked.dtype == torch.int64
    torch.testing.assert_close(model.conv1.weight, state["conv1.weight"].to(torch.bfloat16))
    assert torch.get_default_dtype() == torch.float32
    assert model(torch.randn(1, 3, 32, 32, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_dtype_without_weights_builds_in_that_dtype_and_puts_the_default_back():
    model = zoo.create("resnet18", dtype="float16", num_classes=3)
    assert {p.dtype for p in model.parameters()} == {torch.float16}
    assert model.fc.out_features == 3 and torch.get_default_dtype() == torch.float32
    assert next(zoo.create("resnet18", device="cpu").parameters()).device == torch.device("cpu")


def test_a_new_head_of_a_bfloat16_model_is_bfloat16_too(resnet18):
    model = zoo.create("resnet18", pretrained=True, dtype=torch.bfloat16, num_classes=5, in_chans=1)
    assert model.fc.weight.dtype == model.conv1.weight.dtype == torch.bfloat16


def test_device_meta_builds_without_memory_even_where_the_builder_computes_with_tensors():
    model = zoo.create("regnet_x_400mf", device="meta", in_chans=1)  # RegNet's builder reads tensor values
    assert {t.device.type for t in [*model.parameters(), *model.buffers()]} == {"meta"}
    assert model.eval()(torch.empty(2, 1, 64, 64, device="meta")).shape == (2, 1000)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_cuda_builds_and_loads_there(resnet18):
    state, reference = resnet18
    model = zoo.create("resnet18", pretrained=True, device="cuda", num_classes=4).eval()
    assert {p.device.type for p in model.parameters()} | {b.device.type for b in model.buffers()} == {"cuda"}
    torch.testing.assert_close(model.conv1.weight.cpu(), state["conv1.weight"])


# ---------------------------------------------------------------------------- saved models


def test_a_model_saved_with_module_options_is_rebuilt_with_them(resnet18, tmp_path):
    model = zoo.create("resnet18", pretrained=True, in_chans=1, global_pool="max", num_classes=3).eval()
    zoo.save_pretrained(model, tmp_path / "saved")
    again = zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()
    assert again.conv1.in_channels == 1 and again.avgpool.pool_type == "max"
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), model(x))
    assert zoo.create(f"local-dir:{tmp_path / 'saved'}", global_pool="avg").avgpool.pool_type == "avg"
    with pytest.raises(InvalidArgumentError, match="loads its own weights"):
        zoo.create(f"local-dir:{tmp_path / 'saved'}", checkpoint_path=tmp_path / "saved")
    unpooled = zoo.create("resnet18", pretrained=True, global_pool="", num_classes=0).eval()
    zoo.save_pretrained(unpooled, tmp_path / "unpooled")
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(zoo.create(f"local-dir:{tmp_path / 'unpooled'}").eval()(x), unpooled(x))
