import copy
import io
import pickle

import pytest
import torch
from finetune_models import conv_net

import zoo
from zoo.finetune import freeze, param_groups, reset_head, unfreeze
from zoo.finetune.freezing import kept_in_eval

BATCH = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def features(model, x=BATCH):
    return model.pool(model.stages(model.stem(x)))


def train_epoch(model, steps=3, lr=0.1):
    model.train()
    opt = torch.optim.SGD(param_groups(model, lr), lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(2)
    for _ in range(steps):
        x = torch.randn(8, 3, 16, 16, generator=g)
        y = torch.randint(0, 5, (8,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()


def trainable(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_frozen_backbone_features_are_bit_identical_after_a_training_epoch():
    model = conv_net()
    model.train()
    features(model)  # let the statistics move once so they are not the initial ones
    freeze(model, "backbone")
    model.eval()
    before = features(model).clone()
    head_before = model.head[1].weight.clone()
    train_epoch(model)
    assert not torch.equal(model.head[1].weight, head_before)  # the head did train
    model.eval()
    assert torch.equal(features(model), before)
    model.train()  # in train mode, frozen BatchNorm still uses its fixed statistics
    assert torch.equal(features(model), before)


def test_backbone_spec_leaves_only_the_head_trainable():
    model = conv_net()
    frozen = freeze(model, "backbone")
    assert trainable(model) == {"head.1.weight", "head.1.bias"}
    assert "stem.1.weight" in frozen
    assert sorted(kept_in_eval(model)) == ["stages.0.1", "stages.1.1", "stem.1"]


def test_integer_spec_follows_freeze_to_over_layer_groups():
    model = conv_net()
    freeze(model, 1)
    assert not any(n.startswith("stem") for n in trainable(model))
    assert any(n.startswith("stages.0") for n in trainable(model))
    assert kept_in_eval(model) == ["stem.1"]
    freeze(model, -1)  # all groups but the last (the head)
    assert trainable(model) == {"head.1.weight", "head.1.bias"}
    freeze(model, 2)  # freeze sets the whole state: stages.1 is trainable again
    assert any(n.startswith("stages.1") for n in trainable(model))
    assert kept_in_eval(model) == ["stem.1", "stages.0.1"]
    for bad in (0, 5, -5):
        with pytest.raises(zoo.InvalidArgumentError, match="layer groups"):
            freeze(model, bad)


def test_pattern_specs_and_specs_matching_nothing():
    model = conv_net()
    freeze(model, ["stem", "stages.0.*"])
    assert {n.split(".")[0] for n in trainable(model)} == {"stages", "head"}
    assert not any(n.startswith("stages.0") for n in trainable(model))
    freeze(model, "*.weight")
    assert all(n.endswith("bias") for n in trainable(model))
    with pytest.raises(zoo.InvalidArgumentError, match="'stemm' matches no parameter"):
        freeze(model, ["stemm"])
    with pytest.raises(zoo.InvalidArgumentError):
        freeze(model, 1.5)
    with pytest.raises(zoo.InvalidArgumentError, match="bn must be one of"):
        freeze(model, "backbone", bn="eval")


@pytest.mark.parametrize("policy,affine_trains,stats_move", [("frozen", False, False), ("affine", True, False),
                                                              ("train", True, True)])
def test_batchnorm_policies(policy, affine_trains, stats_move):
    model = conv_net()
    freeze(model, "backbone", bn=policy)
    bn = model.stem[1]
    assert bn.weight.requires_grad is affine_trains and bn.bias.requires_grad is affine_trains
    stats = bn.running_mean.clone()
    model.train()
    model(BATCH)
    assert (not torch.equal(bn.running_mean, stats)) is stats_move


def test_frozen_batchnorm_survives_train_state_dict_deepcopy_and_pickle():
    model = conv_net()
    freeze(model, "backbone")
    restored = conv_net(seed=1)
    freeze(restored, "backbone")
    restored.load_state_dict(model.state_dict())
    for m in (model, restored, copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        m.train()
        stats = m.stages[1][1].running_var.clone()
        m(BATCH)
        assert torch.equal(m.stages[1][1].running_var, stats)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert set(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)) == set(model.state_dict())


def test_unfreeze_all_and_by_spec():
    model = conv_net()
    freeze(model, "backbone")
    changed = unfreeze(model, "stages.1")
    assert changed and all(n.startswith("stages.1") for n in changed)
    assert kept_in_eval(model) == ["stem.1", "stages.0.1"]
    unfreeze(model)
    assert trainable(model) == {n for n, _ in model.named_parameters()}
    assert kept_in_eval(model) == []
    model.train()
    stats = model.stem[1].running_mean.clone()
    model(BATCH)
    assert not torch.equal(model.stem[1].running_mean, stats)  # statistics train again


def test_freeze_then_reset_head_keeps_backbone_frozen():
    model = conv_net()
    freeze(model, "backbone")
    reset_head(model, 2)
    assert trainable(model) == {"head.1.weight", "head.1.bias"}
