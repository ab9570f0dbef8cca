"""timm models through zoo: pretrained weights from a local Hub cache equal timm's own, and zoo's fine-tune API."""
import sys

import pytest
import torch
from timm_helpers import image_batch, serve_weights, timm, use_hub_cache

import zoo
import zoo.finetune
from zoo.errors import PluginError


@pytest.fixture
def hub(tmp_path, monkeypatch):
    return use_hub_cache(tmp_path, monkeypatch)


@pytest.mark.parametrize("arch", ["test_resnet", "test_vit", "test_convnext", "test_efficientnet"])
def test_pretrained_equals_timm_on_the_same_file(hub, arch):
    serve_weights(hub, arch, "r160_in1k")
    ours = zoo.create(f"timm/{arch}.r160_in1k", pretrained=True).eval()
    theirs = timm.create_model(f"{arch}.r160_in1k", pretrained=True).eval()
    x = image_batch()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)
    assert ours.zoo_card.default_weights == "r160_in1k"
    assert zoo.create(f"timm/{arch}", pretrained=True).zoo_card.default_weights == "r160_in1k"  # timm's default


def test_new_head_leaves_out_only_the_head_keys(hub):
    state = serve_weights(hub, "test_convnext", "r160_in1k")
    model = zoo.create("timm/test_convnext.r160_in1k", pretrained=True, num_classes=5)
    assert model.head.fc.out_features == 5 and model.zoo_card.num_classes == 5
    loaded = model.state_dict()
    for key, value in state.items():
        if not key.startswith("head.fc."):
            assert torch.equal(loaded[key], value), key
    assert model(image_batch()).shape == (2, 5)


def test_num_classes_zero_gives_pooled_features_as_timm(hub):
    serve_weights(hub, "test_resnet", "r160_in1k")
    model = zoo.create("timm/test_resnet.r160_in1k", pretrained=True, num_classes=0).eval()
    reference = timm.create_model("test_resnet.r160_in1k", pretrained=True, num_classes=0).eval()
    with torch.no_grad():
        out = model(image_batch())
        torch.testing.assert_close(out, reference(image_batch()))
    assert out.shape == (2, model.zoo_card.num_features)


def test_freeze_backbone_keeps_batchnorm_statistics(hub):
    serve_weights(hub, "test_resnet", "r160_in1k")
    model = zoo.create("timm/test_resnet.r160_in1k", pretrained=True, num_classes=3, freeze="backbone")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    before = model.layer1[0].bn1.running_mean.clone()
    model.train()
    model(image_batch())
    assert torch.equal(model.layer1[0].bn1.running_mean, before)  # frozen BatchNorm stays in eval mode


def test_layer_decay_follows_timms_group_matcher():
    model = zoo.create("timm/test_vit", num_classes=4)
    card = model.zoo_card
    assert card.layer_groups[0] == "patch_embed" and card.layer_groups[-1] == "head"
    assert [g for g in card.layer_groups if g.startswith("blocks.")] == [f"blocks.{i}" for i in range(6)]
    groups = zoo.finetune.param_groups(model, lr=1.0, layer_decay=0.5)
    lrs = sorted({g["lr"] for g in groups})
    assert max(lrs) == 1.0 and min(lrs) < 0.01  # the head at lr, the patch embedding decayed by 0.5 per group
    first = [g for g in groups if any(p is model.cls_token for p in g["params"])]
    assert first and first[0]["lr"] == min(lrs)  # the class token sits with the stem, as in timm


def test_lora_adapts_the_attention_and_mlp_projections():
    from zoo.finetune.lora import apply_lora

    model = zoo.create("timm/test_vit", num_classes=4)
    assert "blocks.*.attn.qkv" in model.zoo_card.extra["lora_targets"]
    adapted = apply_lora(model, rank=2)
    assert "blocks.0.attn.qkv" in adapted and "blocks.5.mlp.fc2" in adapted
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or n.startswith("head.") for n in trainable)


def test_one_fit_epoch_on_tiny_data_trains_the_head(hub):
    serve_weights(hub, "test_efficientnet", "r160_in1k")
    model = zoo.create("timm/test_efficientnet.r160_in1k", pretrained=True, num_classes=2)
    x, y = image_batch(64, 8), torch.tensor([0, 1] * 4)
    head = model.classifier.weight.detach().clone()
    result = zoo.finetune.fit(model, (x, y), epochs=1, batch_size=4, lr=1e-2, strategy="freeze",
                              progress=False, verbose=False)
    assert len(result.history) == 1 and not torch.equal(model.classifier.weight, head)


def test_recipes_resolve_to_timm_backbones():
    for recipe, base in [("timm_convnext_ft", "timm/convnext_tiny"), ("timm_vit_ft", "timm/vit_base_patch16_224")]:
        card = zoo.get_card(recipe)
        assert card.recipe.model.partition(".")[0] == base and card.recipe.required == ("num_classes",)
        assert card.default_weights in zoo.get_card(base).weights


def test_create_without_timm_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    assert "timm/test_resnet" in zoo.list_models("timm/*")  # still listed, with its card
    assert zoo.get_card("timm/test_resnet").head == "fc"
    with pytest.raises(PluginError, match=r'pip install "zoo-models\[timm\]"'):
        zoo.create("timm/test_resnet")


def test_timm_names_go_through_the_generic_hub_entry(hub, monkeypatch):
    from conftest import REPO

    serve_weights(hub, "test_resnet", "r160_in1k")
    monkeypatch.delitem(sys.modules, "hubconf", raising=False)
    model = torch.hub.load(str(REPO), "create", "timm/test_resnet.r160_in1k", source="local", pretrained=True)
    assert model.zoo_card.name == "timm/test_resnet" and model.zoo_card.default_weights == "r160_in1k"
