"""The fast caching pass (joined batches, channels_last, precision) gives the features the model computes eagerly."""
from __future__ import annotations

import pytest
import torch

import zoo
from zoo.finetune.feature_cache import cache_key, cached_features, joined

TOLERANCE = 1e-6  # fp32 on a CPU, relative to the largest feature: docs/finetune.md, "Speed by default"

TINY_TEXT = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 48}


def eager_head_inputs(model: torch.nn.Module, batches: list[tuple[object, torch.Tensor]]) -> torch.Tensor:
    """What the head reads, batch by batch as given, the model in eval mode in its own layout and fp32."""
    captured: list[torch.Tensor] = []
    head = model.get_submodule(model.zoo_card.head)
    hook = head.register_forward_pre_hook(lambda module, args: captured.append(args[0].clone()))
    model.eval()
    try:
        with torch.no_grad():
            for inputs, _ in batches:
                model(*inputs) if isinstance(inputs, tuple) else model(inputs)
    finally:
        hook.remove()
    return torch.cat(captured)


def assert_within_tolerance(features: torch.Tensor, expected: torch.Tensor) -> None:
    """Other batch sizes and layouts round differently: equal within 1e-6 of the largest feature."""
    assert features.shape == expected.shape
    assert (features - expected).abs().max() <= TOLERANCE * expected.abs().max()


def counting(module: torch.nn.Module) -> list[int]:
    calls: list[int] = []
    module.register_forward_pre_hook(lambda *args: calls.append(1))
    return calls


def test_image_features_with_channels_last_and_joined_batches_equal_the_eager_ones(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("resnet18", pretrained=False, num_classes=4)
    images = torch.randn(10, 3, 32, 32)
    labels = torch.arange(10) % 4
    batches = [(images[i:i + 3], labels[i:i + 3]) for i in range(0, 10, 3)]  # 3, 3, 3 and 1 images
    expected = eager_head_inputs(model, batches)
    model.train()
    calls = counting(model.conv1)
    result = cached_features(model, batches, data="images", cache_dir=tmp_path, channels_last=True)
    assert len(calls) == 1  # four batches joined into one pass (up to 4x the first batch)
    assert torch.equal(result.labels, labels)
    assert result.features.dtype == torch.float32 and result.features.is_contiguous()
    assert_within_tolerance(result.features, expected)
    # the model is left as it was: training mode, its own memory format
    assert model.training and model.conv1.weight.is_contiguous()


def test_text_features_equal_the_eager_ones(tmp_path):
    torch.manual_seed(0)
    model = zoo.create("bert_classifier", vocab_size=100, num_classes=3, **TINY_TEXT)
    gen = torch.Generator().manual_seed(1)
    batches = []
    for length, real in ((12, (12, 5, 9)), (12, (3, 12, 7)), (7, (7, 2, 4))):  # the last one is padded shorter
        mask = (torch.arange(length)[None, :] < torch.tensor(real)[:, None]).long()
        ids = torch.randint(5, 100, (3, length), generator=gen).masked_fill(mask == 0, 0)
        batches.append(((ids, mask), torch.tensor([0, 1, 2])))
    expected = eager_head_inputs(model, batches)
    calls = counting(model)
    result = cached_features(model, batches, data="texts", cache_dir=tmp_path)
    assert len(calls) == 2  # the two batches padded to 12 tokens joined, the one of 7 alone
    assert_within_tolerance(result.features, expected)
    assert torch.equal(result.labels, torch.tensor([0, 1, 2] * 3))


def test_joining_keeps_the_order_and_stops_at_its_limits():
    xs = [(torch.full((2, 3), float(i)), torch.tensor([i, i])) for i in range(5)]
    out = list(joined(xs, multiple=2))
    assert [len(t) for _, t in out] == [4, 4, 2]
    assert torch.equal(torch.cat([t for _, t in out]), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]))
    assert list(joined(xs, multiple=1)) == xs  # nothing joined
    other = [(torch.zeros(2, 3), None), (torch.zeros(2, 4), None)]
    assert len(list(joined(other))) == 2  # other trailing shapes are not joined


def test_the_precision_of_the_pass_is_part_of_the_key_except_fp32():
    model = zoo.create("resnet18", pretrained=False, num_classes=4)
    fp32 = cache_key(model, data="a")
    assert cache_key(model, data="a", precision="fp32") == fp32  # entries written before keep their key
    assert cache_key(model, data="a", precision="bf16") != fp32


def test_auto_precision_is_fp32_on_a_cpu(tmp_path):
    model = zoo.create("resnet18", pretrained=False, num_classes=4)
    batches = [(torch.randn(2, 3, 32, 32), torch.tensor([0, 1]))]
    auto = cached_features(model, batches, data="x", cache_dir=tmp_path)
    assert auto.path.name.endswith(f"{cache_key(model, data='x')}.safetensors")


def test_an_unknown_precision_lists_the_accepted_ones(tmp_path):
    model = zoo.create("resnet18", pretrained=False, num_classes=4)
    with pytest.raises(zoo.errors.InvalidArgumentError, match="auto, fp32, bf16, fp16"):
        cached_features(model, [(torch.randn(2, 3, 32, 32), None)], data="x", cache_dir=tmp_path, precision="fp8")
