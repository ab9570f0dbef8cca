"""resnet_ft: pretrained ResNet-50 from a torchvision-layout checkpoint, last stage + head trainable, BN fixed."""
from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch
import torchvision

import zoo
import zoo.registry
from zoo_vision.catalog import model_cards
from zoo_vision.recipes import RECIPES


def install_checkpoint(tmp_path, monkeypatch, name: str, state: dict[str, torch.Tensor]) -> None:
    """Save `state` as torchvision publishes weights, $TORCH_HOME/hub/checkpoints/<name>-<sha8>.pth, offline.

    The real card's hash cannot match a file made here, so a fresh default registry holds the
    card with its default weights pointing at this file's URL and hash (plus zoo_vision's recipes).
    """
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path / "zoo"))
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    checkpoints = tmp_path / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    scratch = checkpoints / "scratch.pth"
    torch.save(state, scratch)
    digest = hashlib.sha256(scratch.read_bytes()).hexdigest()[:8]
    scratch.rename(checkpoints / f"{name}-{digest}.pth")

    card = next(c for c in model_cards() if c.name == name)
    tag = card.default_weights
    weights = dataclasses.replace(card.weights[tag], source=f"https://download.pytorch.org/models/{name}-{digest}.pth",
                                  sha256=digest)
    registry = zoo.Registry()
    registry.register(dataclasses.replace(card, weights={**card.weights, tag: weights}))
    for recipe in RECIPES:
        if recipe.model.startswith(name + "."):
            registry.register(recipe)
    monkeypatch.setattr(zoo.registry, "_default", registry)


@pytest.fixture
def resnet50_checkpoint(tmp_path, monkeypatch):
    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    for name, tensor in state.items():  # statistics a pretrained model would have, not the init values
        if name.endswith("running_mean"):
            tensor.normal_(0, 0.1)
        elif name.endswith("running_var"):
            tensor.uniform_(0.5, 1.5)
    install_checkpoint(tmp_path, monkeypatch, "resnet50", state)
    return state


def bn_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: b.clone() for n, b in model.named_buffers() if "running" in n or "num_batches" in n}


def test_resnet_ft_loads_weights_and_trains_only_the_last_stage_and_head(resnet50_checkpoint):
    state = resnet50_checkpoint
    model = zoo.create("resnet_ft", num_classes=5)

    assert model.zoo_card.recipe.name == "resnet_ft" and model.zoo_card.num_classes == 5
    assert model.fc.out_features == 5
    torch.testing.assert_close(model.layer1[0].conv1.weight, state["layer1.0.conv1.weight"])
    torch.testing.assert_close(model.layer4[2].bn3.running_var, state["layer4.2.bn3.running_var"])

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {n for n, _ in model.named_parameters()
                if n.startswith("fc.") or (n.startswith("layer4.") and ".bn" not in n and ".downsample.1." not in n)}
    assert trainable == expected
    assert any(n.startswith("layer4.") for n in trainable) and {"fc.weight", "fc.bias"} <= trainable

    before_bn = bn_state(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    images, labels = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()

    for name, value in bn_state(model).items():
        assert torch.equal(value, before_bn[name]), f"BatchNorm buffer {name} changed in a training step"
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == expected


@pytest.mark.parametrize("recipe, trainable_prefixes", [
    ("vit_ft", ("encoder.layers.encoder_layer_10.", "encoder.layers.encoder_layer_11.", "encoder.ln.", "heads.head.")),
    ("efficientnet_ft", ("features.6.", "features.7.", "classifier.1.")),
    ("convnext_ft", ("features.7.", "classifier.")),
    ("mobilenet_ft", ("classifier.",)),
])
def test_sibling_recipes_freeze_all_but_their_last_stage(recipe, trainable_prefixes):
    freeze = zoo.get_card(recipe).recipe.options["freeze"]  # given: pretrained=False alone is refused for a recipe
    model = zoo.create(recipe, num_classes=3, pretrained=False, freeze=freeze)  # the freeze, without downloading
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if n.startswith(trainable_prefixes)}
    assert model.zoo_card.num_classes == 3


def test_googlenet_checkpoint_with_aux_heads_loads_into_plain_logits_model(tmp_path, monkeypatch):
    torch.manual_seed(0)
    state = torchvision.models.googlenet(aux_logits=True, init_weights=False).state_dict()  # as torchvision ships it
    assert any(k.startswith("aux1.") for k in state)
    install_checkpoint(tmp_path, monkeypatch, "googlenet", state)
    model = zoo.create("googlenet", pretrained=True)
    torch.testing.assert_close(model.inception5b.branch1.conv.weight, state["inception5b.branch1.conv.weight"])
    assert model.aux1 is None and model.transform_input
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1000)


def test_inception_v3_checkpoint_keys_match_after_dropping_aux_heads():
    from zoo_vision.keymaps import drop_aux_heads

    card = zoo.get_card("inception_v3")
    with torch.device("meta"):
        shipped = torchvision.models.inception_v3(aux_logits=True, init_weights=False).state_dict()
        ours = torchvision.models.inception_v3(**card.defaults).state_dict()
    assert set(drop_aux_heads(shipped)) == set(ours)
