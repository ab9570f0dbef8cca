"""Every image card builds, gives logits of the right shape, and declares its head and layer groups right.

One model per family always runs (small inputs where the architecture allows); the full
catalogue at each card's own input size is the slow sweep (``pytest -m slow``).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.finetune.groups import layer_groups
from zoo.finetune.heads import reset_head

# One per family, the smallest, at the smallest input it takes. ViT runs at 64x64 (image_size=64 builds
# the same modules with a shorter position embedding); Swin pads any input to its windows.
SUBSET = {
    "alexnet": 63, "convnext_tiny": 32, "densenet121": 32, "efficientnet_b0": 32, "efficientnet_v2_s": 32,
    "googlenet": 32, "inception_v3": 75, "maxvit_t": 224, "mnasnet0_5": 32, "mobilenet_v2": 32,
    "mobilenet_v3_small": 32, "regnet_x_400mf": 32, "resnet18": 32, "resnext50_32x4d": 32, "shufflenet_v2_x0_5": 32,
    "squeezenet1_1": 32, "swin_t": 64, "swin_v2_t": 64, "vgg11_bn": 32, "vit_b_32": 64, "wide_resnet50_2": 32,
}
BUILDER_KWARGS = {"vit_b_32": {"image_size": 64}}
CLASSES = 7


def image_cards() -> list[str]:
    return [n for n in zoo.list_models(modality="image") if zoo.get_card(n).recipe is None
            and zoo.default_registry().claim(n).plugin == "vision"]


def check_structure(name: str, side: int, batch: int = 1, **kwargs) -> nn.Module:
    """Build (pretrained=False) and run once; check the logits, the head, its input width and the layer groups."""
    card = zoo.get_card(name)
    torch.manual_seed(0)
    model = zoo.create(name, num_classes=CLASSES, **kwargs).eval()
    modules = dict(model.named_modules())
    assert card.head in modules, f"{name}: head {card.head!r} is not a module"

    calls: list[tuple[str, torch.Tensor]] = []
    group_order: list[str] = []
    head_inputs: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda mod, args, out, n=n: calls.append((n, out)))
             for n, m in modules.items() if isinstance(m, (nn.Linear, nn.Conv2d))]
    hooks += [modules[p].register_forward_hook(lambda mod, args, out, p=p: group_order.append(p))
              for p in card.layer_groups if p in modules]
    hooks.append(modules[card.head].register_forward_hook(lambda mod, args, out: head_inputs.append(args[0])))
    with torch.inference_mode():
        logits = model(torch.randn(batch, 3, side, side))
    for hook in hooks:
        hook.remove()

    assert isinstance(logits, torch.Tensor) and logits.shape == (batch, CLASSES), f"{name}: {logits!r:.80}"
    # The declared head is the last Linear/Conv to run, it gives CLASSES channels, and it reads num_features.
    last_name, last_out = calls[-1]
    assert last_name == card.head, f"{name}: the last Linear/Conv to run is {last_name!r}, the card says {card.head!r}"
    assert last_out.shape[-1 if last_out.ndim == 2 else 1] == CLASSES
    head_in = head_inputs[0]
    assert head_in.shape[-1 if head_in.ndim == 2 else 1] == card.num_features, f"{name}: head reads {head_in.shape}"

    # Layer groups: existing modules, run input side first, the head last, every parameter in one group.
    missing = [p for p in card.layer_groups if p not in modules]
    assert not missing, f"{name}: layer groups {missing} are not modules"
    assert list(dict.fromkeys(group_order)) == list(card.layer_groups), f"{name}: groups run as {group_order}"
    assert card.layer_groups[-1] == card.head
    for pname, _ in model.named_parameters():
        owners = [p for p in card.layer_groups if pname == p or pname.startswith(p + ".")]
        assert len(owners) <= 1, f"{name}: parameter {pname!r} is in groups {owners}"
        if not owners:  # only container-level tensors (ViT's class token, position embedding) sit outside
            holder = pname.rpartition(".")[0]
            assert holder == "" or any(g.startswith(holder + ".") for g in card.layer_groups), \
                f"{name}: parameter {pname!r} is in no layer group"
    grouped = layer_groups(model)  # what freezing and layer-wise rates use
    assert [p for p, _ in grouped] == list(card.layer_groups)
    assert sum(len(params) for _, params in grouped) == len(list(model.parameters()))
    return model


def check_pooled_features(name: str, side: int, model: nn.Module | None = None, **kwargs) -> None:
    """``zoo.create(name, num_classes=0)`` (or `model` with its head reset to 0) gives [N, num_features]."""
    card = zoo.get_card(name)
    if model is None:
        model = zoo.create(name, num_classes=0, **kwargs).eval()
    else:
        reset_head(model, 0)
    with torch.inference_mode():
        pooled = model(torch.randn(1, 3, side, side))
    assert pooled.shape == (1, card.num_features), f"{name}: features {tuple(pooled.shape)}"
    assert model.zoo_card.num_classes == 0 and model.zoo_card.num_features == card.num_features


def test_subset_names_one_model_per_family():
    families = {zoo.get_card(n).family for n in image_cards()}
    assert {zoo.get_card(n).family for n in SUBSET} == families
    assert len(image_cards()) >= 83


@pytest.mark.parametrize("name", sorted(set(SUBSET) - {"googlenet", "inception_v3"}))
def test_one_model_per_family_builds_and_declares_head_and_groups(name):
    model = check_structure(name, SUBSET[name], **BUILDER_KWARGS.get(name, {}))
    check_pooled_features(name, SUBSET[name], model)


@pytest.mark.parametrize("name", ["resnet18", "squeezenet1_1"])
def test_create_with_zero_classes_gives_pooled_features_of_the_card_width(name):
    check_pooled_features(name, SUBSET[name])


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_aux_head_models_return_plain_logits_in_training(name):
    model = check_structure(name, SUBSET[name])
    out = model.train()(torch.randn(2, 3, 75, 75))
    assert isinstance(out, torch.Tensor) and out.shape == (2, CLASSES)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in zoo.list_models(modality="image") if not n.endswith("_ft")])
def test_every_model_at_its_input_size(name):
    card = zoo.get_card(name)
    if card.recipe is not None or zoo.default_registry().claim(name).plugin != "vision":
        pytest.skip("not an image family card")
    model = check_structure(name, card.input.size)
    check_pooled_features(name, card.input.size, model)
