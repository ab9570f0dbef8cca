"""Modules built fresh beside the head (a card's ``extra["head_companions"]``: DeBERTa's pooler, wav2vec2's
projector) load, freeze, take rates, take LoRA and meet the feature cache as the head does."""
from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import zoo
from zoo.factory import attach_card
from zoo.finetune import apply_lora, fit, freeze, param_groups, reset_head
from zoo.finetune.freezing import kept_in_eval
from zoo.finetune.lora import lora_state_dict
from zoo.finetune.strategies import get_strategy
from zoo.weights import build_and_load

QUIET = {"progress": False, "verbose": False, "precision": "fp32", "seed": 0}


class PooledClassifier(nn.Module):
    """An encoder, a pooler beside the classifier (a Linear and a BatchNorm), then the classifier."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 8))
        self.pooler = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Tanh())
        self.classifier = nn.Linear(8, num_classes)
        self.num_features = 8

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pooler(self.encoder(x)))


def card(companions: list[str] | None = ("pooler",)) -> zoo.ModelCard:
    extra = {"lora_targets": ["encoder.*"]}
    if companions is not None:
        extra["head_companions"] = list(companions)
    return zoo.ModelCard(name="pooled_classifier", builder="test_head_companions:PooledClassifier",
                         task="text-classification", modality="text", head="classifier",
                         layer_groups=["encoder.0", "encoder.3", "pooler", "classifier"], num_features=8,
                         extra=extra)


def model(companions: list[str] | None = ("pooler",), seed: int = 0) -> PooledClassifier:
    torch.manual_seed(seed)
    built = PooledClassifier()
    attach_card(built, card(companions))
    return built


def trainable(module: nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if p.requires_grad}


FRESH = {"pooler.0.weight", "pooler.0.bias", "pooler.1.weight", "pooler.1.bias", "classifier.weight",
         "classifier.bias"}


def base_weights() -> dict[str, torch.Tensor]:
    """A checkpoint of the encoder alone (no pooler, no classifier)."""
    return {k: torch.full_like(v, 0.5) for k, v in PooledClassifier().state_dict().items()
            if k.startswith("encoder.")}


def test_weights_may_leave_out_a_companions_keys():
    state = base_weights()
    loaded = build_and_load(card(), PooledClassifier, {}, state, head_optional=True, where="base")
    assert torch.equal(loaded.encoder[0].weight, state["encoder.0.weight"])
    assert not loaded.pooler[0].weight.is_meta and loaded.pooler[0].weight.abs().sum() > 0  # freshly initialised
    with pytest.raises(zoo.WeightsError, match=r"missing keys: pooler\.0\.weight"):
        build_and_load(card(companions=None), PooledClassifier, {}, state, head_optional=True, where="base")


def test_weights_still_must_hold_a_companion_when_the_head_is_not_optional():
    with pytest.raises(zoo.WeightsError, match="missing keys: pooler"):
        build_and_load(card(), PooledClassifier, {}, base_weights(), head_optional=False, where="base")


def test_freezing_the_backbone_leaves_the_companions_training_under_the_head_bn_policy():
    net = model()
    freeze(net, "backbone")
    assert trainable(net) == FRESH
    assert kept_in_eval(net) == ["encoder.1"]  # the pooler's BatchNorm trains like the head
    freeze(net, -1)  # every group but the head's
    assert trainable(net) == FRESH
    without = model(companions=None)
    freeze(without, "backbone")
    assert trainable(without) == {"classifier.weight", "classifier.bias"}


@pytest.mark.parametrize("strategy", ["freeze", "freeze_unfreeze", "unfreeze_milestones", "lora"])
def test_every_strategy_that_freezes_the_backbone_trains_the_companions(strategy):
    net = model()
    get_strategy(strategy).setup(net)
    assert FRESH <= trainable(net)
    assert not any(n.startswith("encoder.1.") for n in trainable(net))


def test_layer_decay_puts_the_companions_in_the_heads_group():
    net = model()
    groups = param_groups(net, 1.0, layer_decay=0.5)
    by_group = {g["group"]: (g["lr"], {id(p) for p in g["params"]}) for g in groups}
    assert [g["group"] for g in groups if g["params"]][-1] == "classifier"
    lr, ids = by_group["classifier"]
    assert lr == 1.0
    assert {id(p) for n, p in net.named_parameters() if n in FRESH} <= ids
    assert "pooler" not in by_group  # no group of its own, left empty


def test_lora_trains_the_companions_whole_and_saves_them():
    net = model()
    adapted = apply_lora(net, ["*"], rank=2)  # every Linear layer, except the head's and its companions'
    assert adapted == ["encoder.0", "encoder.3"]
    assert isinstance(net.pooler[0], nn.Linear)
    assert FRESH <= trainable(net)
    assert {k for k in lora_state_dict(net) if k.startswith("pooler.")} == \
        {"pooler.0.weight", "pooler.0.bias", "pooler.1.weight", "pooler.1.bias", "pooler.1.running_mean",
         "pooler.1.running_var", "pooler.1.num_batches_tracked"}


def test_the_feature_cache_is_not_used_while_a_companion_trains(tmp_path, caplog):
    net = model()
    before = net.pooler[0].weight.detach().clone()
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(8, 6, generator=gen), torch.randint(0, 3, (8,), generator=gen))
    with caplog.at_level(logging.INFO, logger="zoo"):
        fit(net, data, epochs=1, batch_size=4, lr=0.5, optimizer="sgd", strategy="freeze", feature_cache=True,
            feature_cache_dir=tmp_path / "features", **QUIET)
    assert not list(tmp_path.rglob("*.safetensors"))
    assert "feature cache not used: pooler beside the head" in caplog.text
    assert not torch.equal(net.pooler[0].weight, before)  # the pooler trained, on the live backbone


def test_a_new_head_replaces_only_the_output_layer_and_no_head_drops_the_companions():
    net = model()
    pooler = net.pooler
    reset_head(net, 5)
    assert net.classifier.out_features == 5 and net.pooler is pooler
    assert net.zoo_card.extra["head_companions"] == ["pooler"]
    reset_head(net, 0)
    assert isinstance(net.pooler, nn.Identity) and isinstance(net.classifier, nn.Identity)
    assert "head_companions" not in net.zoo_card.extra and net.zoo_card.num_features == 8
    x = torch.randn(2, 6)
    net.eval()
    assert torch.equal(net(x), net.encoder(x))


def test_a_card_naming_companions_wrongly_is_refused():
    net = PooledClassifier()
    attach_card(net, dataclasses.replace(card(), extra={"head_companions": "pooler"}))
    with pytest.raises(zoo.CardError, match="head_companions"):
        freeze(net, "backbone")
