import pytest
import torch
from finetune_models import TinyEncoder, encoder

import zoo
from zoo.finetune.lora import LoRALinear, apply_lora, lora_state_dict, merge_lora, merged_state_dict

IDS = torch.randint(0, 50, (4, 6), generator=torch.Generator().manual_seed(0))
LABELS = torch.tensor([0, 1, 0, 1])


def train(model, steps=5):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    model.train()
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(IDS), LABELS).backward()
        opt.step()


def test_adapters_go_on_the_card_targets_and_start_as_the_identity():
    model = encoder().eval()
    before = model(IDS)
    assert apply_lora(model, rank=4) == ["block.q", "block.v"]
    assert isinstance(model.block["q"], LoRALinear) and isinstance(model.block["k"], torch.nn.Linear)
    assert torch.allclose(model(IDS), before)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"block.q.lora_a", "block.q.lora_b", "block.v.lora_a", "block.v.lora_b",
                         "classifier.weight", "classifier.bias"}


def test_training_then_merging_keeps_outputs_and_original_names():
    original_keys = set(encoder().state_dict())
    model = encoder()
    frozen_k = model.block["k"].weight.clone()
    apply_lora(model, ["block.*"], rank=2)  # a container pattern: every Linear in the block
    assert sum(isinstance(m, LoRALinear) for m in model.modules()) == 5
    train(model)
    assert torch.equal(model.block["k"].base.weight, frozen_k)  # base weights stay frozen
    model.eval()
    tuned = model(IDS)
    snapshot = merged_state_dict(model)  # the model keeps its adapters
    assert set(snapshot) == original_keys and any(isinstance(m, LoRALinear) for m in model.modules())
    merge_lora(model)
    assert all(torch.allclose(snapshot[k], v, atol=1e-6) for k, v in model.state_dict().items())
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert set(model.state_dict()) == original_keys
    assert torch.allclose(model(IDS), tuned, atol=1e-5)
    fresh = TinyEncoder()
    fresh.load_state_dict(model.state_dict(), strict=True)
    assert torch.allclose(fresh.eval()(IDS), tuned, atol=1e-5)


def test_lora_state_dict_holds_adapters_and_the_head():
    model = encoder()
    apply_lora(model, rank=2)
    keys = set(lora_state_dict(model))
    assert keys == {"block.q.lora_a", "block.q.lora_b", "block.v.lora_a", "block.v.lora_b",
                    "classifier.weight", "classifier.bias"}


def test_head_is_never_adapted_and_bad_targets_are_errors():
    model = encoder()
    with pytest.raises(zoo.InvalidArgumentError, match="matches no Linear"):
        apply_lora(model, ["classifier"])
    with pytest.raises(zoo.InvalidArgumentError, match="matches no Linear"):
        apply_lora(model, ["block.qq"])
    from finetune_models import conv_net

    with pytest.raises(zoo.ZooError, match="names no LoRA targets"):
        apply_lora(conv_net())


def test_adapters_work_where_the_weight_is_read_directly():
    """nn.MultiheadAttention reads out_proj.weight instead of calling out_proj: adapters must still act."""
    from torch import nn

    from zoo.factory import attach_card

    class AttentionNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
            self.head = nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.attn(x, x, x, need_weights=False)[0].mean(1))

    torch.manual_seed(0)
    model = AttentionNet()
    attach_card(model, zoo.ModelCard(name="attn_net", builder="a:b", task="text-classification", modality="text",
                                     head="head", extra={"lora_targets": ["attn.out_proj"]}))
    x = torch.randn(3, 4, 8)
    before = model(x).detach()
    apply_lora(model, rank=2)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model(x).sum().backward()
    assert model.attn.out_proj.lora_b.grad is not None and model.attn.out_proj.lora_b.grad.abs().sum() > 0
    opt.step()
    tuned = model(x).detach()
    assert not torch.allclose(tuned, before)
    merge_lora(model)
    assert isinstance(model.attn.out_proj, nn.Linear) and torch.allclose(model(x), tuned, atol=1e-5)
