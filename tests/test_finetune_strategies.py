import pytest
from finetune_models import conv_net, encoder

import zoo
from zoo.finetune import get_strategy
from zoo.finetune.freezing import kept_in_eval
from zoo.finetune.strategies import STRATEGIES, Strategy


def trainable_groups(model):
    return sorted({n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("stages") else "")
                   for n, p in model.named_parameters() if p.requires_grad})


def test_names_and_default():
    assert set(STRATEGIES) == {"no_freeze", "freeze", "freeze_unfreeze", "unfreeze_milestones", "lora"}
    assert get_strategy().name == "freeze_unfreeze"
    assert get_strategy("freeze").uses_feature_cache
    assert not get_strategy("freeze", bn="train").uses_feature_cache
    assert not get_strategy("freeze_unfreeze").uses_feature_cache
    custom = Strategy()
    assert get_strategy(custom) is custom
    with pytest.raises(zoo.InvalidArgumentError, match="choose one of"):
        get_strategy("freze")
    with pytest.raises(zoo.InvalidArgumentError, match="does not take"):
        get_strategy("freeze", epochs=3)


def test_no_freeze_and_freeze():
    model = conv_net()
    get_strategy("freeze").setup(model)
    assert trainable_groups(model) == ["head"]
    get_strategy("no_freeze").setup(model)
    assert trainable_groups(model) == ["head", "stages.0", "stages.1", "stem"]
    assert kept_in_eval(model) == []


def test_freeze_unfreeze_trains_the_head_first_then_everything():
    model = conv_net()
    strategy = get_strategy("freeze_unfreeze", freeze_epochs=2)
    strategy.setup(model)
    seen = []
    for epoch in range(5):
        strategy.on_epoch_start(model, epoch, 5)
        seen.append(trainable_groups(model))
    assert seen[:2] == [["head"], ["head"]]
    assert seen[2:] == [["head", "stages.0", "stages.1", "stem"]] * 3
    one = conv_net()
    strategy = get_strategy("freeze_unfreeze")
    strategy.setup(one)
    strategy.on_epoch_start(one, 0, 1)  # a one-epoch run trains everything
    assert trainable_groups(one) == ["head", "stages.0", "stages.1", "stem"]


def test_unfreeze_milestones_opens_groups_from_the_head_side():
    model = conv_net()
    strategy = get_strategy("unfreeze_milestones", milestones=(1, 3))
    strategy.setup(model)
    seen = []
    for epoch in range(4):
        strategy.on_epoch_start(model, epoch, 4)
        seen.append(trainable_groups(model))
    assert seen == [["head"], ["head", "stages.1"], ["head", "stages.1"], ["head", "stages.0", "stages.1", "stem"]]
    assert kept_in_eval(model) == []
    default = get_strategy("unfreeze_milestones", groups_per_milestone=2)
    assert default.milestones_for(9) == (3, 6)
    with pytest.raises(zoo.InvalidArgumentError):
        get_strategy("unfreeze_milestones", milestones=(3, 1))


def test_lora_strategy_trains_adapters_and_head_only():
    model = encoder()
    get_strategy("lora", rank=2).setup(model)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert names == {"block.q.lora_a", "block.q.lora_b", "block.v.lora_a", "block.v.lora_b",
                     "classifier.weight", "classifier.bias"}


@pytest.mark.parametrize("name, options, message", [
    ("unfreeze_milestones", {"milestones": ["3"]}, "milestones must be None or increasing epoch numbers"),
    ("unfreeze_milestones", {"groups_per_milestone": "2"}, "groups_per_milestone must be a whole number"),
    ("lora", {"rank": "8"}, "rank must be a whole number of at least 1"),
    ("lora", {"dropout": 1.5}, "dropout must be a number from 0"),
])
def test_strategy_options_of_the_wrong_type_or_range_are_named(name, options, message):
    with pytest.raises(zoo.InvalidArgumentError, match=message):
        get_strategy(name, **options)
