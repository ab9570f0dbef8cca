import pytest
import torch
from finetune_models import conv_net
from torch import nn

import zoo
from zoo.finetune import freeze, layer_groups, param_groups, unfreeze

X = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
Y = torch.arange(8) % 5


def step(model, opt):
    model.train()
    opt.zero_grad()
    nn.functional.cross_entropy(model(X), Y).backward()
    opt.step()


def test_layer_groups_follow_the_card_input_side_first():
    model = conv_net()
    groups = layer_groups(model)
    assert [p for p, _ in groups] == ["stem", "stages.0", "stages.1", "head"]
    by_id = {id(p): n for n, p in model.named_parameters()}
    assert [by_id[id(p)] for p in groups[0][1]] == ["stem.0.weight", "stem.1.weight", "stem.1.bias"]
    assert sum(len(ps) for _, ps in groups) == len(list(model.parameters()))


def test_parameters_outside_every_group_join_the_group_before_them():
    model = conv_net()
    model.register_parameter("pos_embed", nn.Parameter(torch.ones(1)))  # top level: comes first, like a ViT's
    model.pool.register_parameter("extra", nn.Parameter(torch.ones(1)))  # between stages.1 and the head
    groups = dict(layer_groups(model))
    assert any(p is model.pos_embed for p in groups["stem"])
    assert any(p is model.pool.extra for p in groups["stages.1"])


def test_param_groups_cover_every_parameter_once_with_layer_decay_and_no_decay():
    model = conv_net()
    freeze(model, "backbone")
    groups = param_groups(model, 1e-2, layer_decay=0.5, weight_decay=0.05)
    seen = [id(p) for g in groups for p in g["params"]]
    assert sorted(seen) == sorted(id(p) for p in model.parameters())  # frozen ones included
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert lr_of[id(model.head[1].weight)] == pytest.approx(1e-2)
    assert lr_of[id(model.stages[1][0].weight)] == pytest.approx(5e-3)
    assert lr_of[id(model.stem[0].weight)] == pytest.approx(1e-2 * 0.5 ** 3)
    assert wd_of[id(model.stem[0].weight)] == 0.05 and wd_of[id(model.head[1].weight)] == 0.05
    assert wd_of[id(model.stem[1].weight)] == 0.0 and wd_of[id(model.head[1].bias)] == 0.0  # norm and bias
    assert {g["group"] for g in groups} == {"stem", "stages.0", "stages.1", "head"}


def test_lr_mult_and_extra_no_decay_patterns():
    model = conv_net()
    groups = param_groups(model, 1.0, lr_mult={"head": 10.0}, weight_decay=0.1, no_decay=["stem.0.*"])
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert lr_of[id(model.head[1].weight)] == 10.0 and lr_of[id(model.stem[0].weight)] == 1.0
    assert wd_of[id(model.stem[0].weight)] == 0.0 and wd_of[id(model.stages[0][0].weight)] == 0.1
    with pytest.raises(zoo.InvalidArgumentError, match="match no parameter"):
        param_groups(model, 1.0, lr_mult={"nothing_here": 2.0})
    with pytest.raises(zoo.InvalidArgumentError):
        param_groups(model, 1.0, layer_decay=1.5)


@pytest.mark.parametrize("make_opt", [
    lambda groups: torch.optim.AdamW(groups, lr=1e-2),
    lambda groups: torch.optim.SGD(groups, lr=1e-2, momentum=0.9),
])
def test_unfrozen_parameters_get_gradients_and_change_on_the_next_step(make_opt):
    model = conv_net()
    freeze(model, "backbone")
    opt = make_opt(param_groups(model, 1e-2, weight_decay=0.01))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: 0.5 ** epoch)
    stem_before = model.stem[0].weight.detach().clone()
    step(model, opt)
    sched.step()
    assert model.stem[0].weight.grad is None and torch.equal(model.stem[0].weight, stem_before)
    unfreeze(model)
    step(model, opt)
    assert model.stem[0].weight.grad is not None and model.stem[0].weight.grad.abs().sum() > 0
    assert not torch.equal(model.stem[0].weight, stem_before)
    assert not torch.equal(model.stem[1].weight.detach(), torch.ones_like(model.stem[1].weight))  # BN scale trained
    assert len(sched.base_lrs) == len(opt.param_groups)  # the schedule covers the newly trainable groups
