import pytest
import torch
from finetune_models import CONV_CARD, conv_net, encoder
from torch import nn

import zoo
from zoo.factory import attach_card
from zoo.finetune import freeze, get_head, reset_head


def test_reset_head_replaces_the_output_layer_inside_a_container_head():
    model = conv_net()
    dropout = model.head[0]
    new = reset_head(model, 3)
    assert new is model.head and model.head[0] is dropout  # dropout kept, only the Linear swapped
    assert isinstance(model.head[1], nn.Linear) and model.head[1].out_features == 3
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 3)
    assert model.zoo_card.num_classes == 3
    assert get_head(model) == ("head", model.head)


def test_reset_head_on_a_plain_linear_head():
    model = encoder()
    new = reset_head(model, 7)
    assert model.classifier is new and new.out_features == 7 and new.in_features == 16
    assert model(torch.randint(0, 50, (2, 5))).shape == (2, 7)


def test_zero_classes_gives_pooled_features_and_a_head_can_come_back():
    model = conv_net()
    reset_head(model, 0)
    assert isinstance(model.head, nn.Identity)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 16)
    assert model.zoo_card.num_classes == 0 and model.zoo_card.num_features == 16
    reset_head(model, 4)
    assert model(torch.randn(2, 3, 16, 16)).shape == (2, 4)


def test_new_head_keeps_dtype_and_is_trainable_after_a_freeze():
    model = conv_net().to(torch.float64)
    freeze(model, 4)  # all four layer groups, the head included
    assert not any(p.requires_grad for p in model.parameters())
    reset_head(model, 2)
    assert model.head[1].weight.dtype == torch.float64
    assert all(p.requires_grad for p in model.head.parameters())
    assert model(torch.randn(1, 3, 16, 16, dtype=torch.float64)).shape == (1, 2)


def test_head_errors_say_what_to_do():
    model = conv_net()
    with pytest.raises(zoo.InvalidArgumentError):
        reset_head(model, -1)
    attach_card(model, zoo.ModelCard(name="nohead", builder="a:b", task="image-classification", modality="image"))
    with pytest.raises(zoo.ZooError, match="declares no head"):
        reset_head(model, 3)
    with pytest.raises(zoo.ZooError, match="no module 'fc'"):
        reset_head(model, 3, head="fc")
    with pytest.raises(zoo.ZooError, match="carries no zoo card"):
        reset_head(nn.Linear(2, 2), 3)


def test_card_without_layer_groups_still_works_through_head_path():
    model = conv_net()
    import dataclasses
    attach_card(model, dataclasses.replace(CONV_CARD, layer_groups=()))
    reset_head(model, 6)
    assert model.head[1].out_features == 6


def test_a_head_size_is_checked_as_create_checks_num_classes():
    model = conv_net()
    before = model.head[1].out_features
    for wrong in (-1, 1_000_001, 2.0, True):
        with pytest.raises(zoo.InvalidArgumentError, match="num_classes must be an integer from 0 to 1,000,000"):
            reset_head(model, wrong)
    with pytest.raises(zoo.InvalidArgumentError, match="reset_head needs num_classes"):
        reset_head(model, None)
    assert model.head[1].out_features == before  # nothing was replaced
