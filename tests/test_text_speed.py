"""The fast text path: packed (padding-free) inference and token-budget batching equal the plain path."""
from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tokenizers")

from test_text_support import TINY, WORDS, write_vocab  # noqa: E402

import zoo  # noqa: E402
from zoo.data import text as text_data  # noqa: E402

TOLERANCE = 1e-5


def mixed_batch(lengths: list[int], vocab_size: int = 100, pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids padded on the right to the longest of `lengths`, and the attention mask."""
    gen = torch.Generator().manual_seed(0)
    longest = max(lengths)
    mask = (torch.arange(longest)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = torch.randint(5, vocab_size, (len(lengths), longest), generator=gen)
    return ids.masked_fill(mask == 0, pad_id), mask


def plain_and_packed(model, ids, mask) -> tuple[torch.Tensor, torch.Tensor]:
    model.eval()
    with torch.inference_mode():
        model.packed_inference = False
        plain = model(ids, mask)
        model.packed_inference = True
        packed = model(ids, mask)
    return plain, packed


@pytest.mark.parametrize("name, options", [
    ("bert_encoder", {"pooling": "mean"}),
    ("bert_encoder", {"pooling": "cls", "normalize": True}),
    ("bert_classifier", {"num_classes": 3, "pooler_dense": True}),
    ("roberta_encoder", {"pooling": "mean"}),           # positions counted after the padding
])
def test_packed_forward_equals_the_padded_forward(name, options):
    torch.manual_seed(0)
    extra = {"pad_token_id": 1, "max_positions": 80} if name.startswith("roberta") else {}
    model = zoo.create(name, vocab_size=100, **TINY, **options, **extra)
    ids, mask = mixed_batch([1, 17, 3, 40, 8, 2, 40, 25], pad_id=extra.get("pad_token_id", 0))
    plain, packed = plain_and_packed(model, ids, mask)
    assert packed.shape == plain.shape
    torch.testing.assert_close(packed, plain, rtol=0, atol=TOLERANCE)
    # the packed path ran: with it the padded tokens' states are never computed
    calls: list[int] = []
    model.layers[0].attn.register_forward_pre_hook(lambda module, args: calls.append(1))
    with torch.inference_mode():
        model(ids, mask)
    assert calls == []  # the packed path calls the attention's forward_packed, not forward


def test_packed_token_classification_equals_the_padded_one_at_real_tokens():
    torch.manual_seed(0)
    model = zoo.create("bert_token_classifier", vocab_size=100, num_classes=5, **TINY)
    ids, mask = mixed_batch([4, 30, 11, 1])
    plain, packed = plain_and_packed(model, ids, mask)
    real = mask.bool()
    torch.testing.assert_close(packed[real], plain[real], rtol=0, atol=TOLERANCE)


def test_training_and_unpadded_batches_take_the_plain_path():
    model = zoo.create("bert_encoder", vocab_size=100, **TINY).eval()
    ids, mask = mixed_batch([5, 9])
    assert model._packs(mask) and not model._packs(torch.ones_like(mask)) and not model._packs(None)
    assert not model.train()._packs(mask)


def test_token_budget_batches_hold_every_index_once_within_the_budget():
    rng = random.Random(0)
    lengths = [rng.randint(1, 60) for _ in range(300)] + [3] * 120 + [500]
    batches = text_data.token_budget_batches(lengths, max_tokens=512, max_items=50)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    assert [500] == [lengths[i] for i in batches[0]]  # longer than the budget: alone, first
    for batch in batches[1:]:
        assert len(batch) * max(lengths[i] for i in batch) <= 512 and len(batch) <= 50
    assert max(len(b) for b in batches) == 50  # short rows share large batches, up to max_items


@pytest.fixture()
def model_with_tokenizer(tmp_path):
    write_vocab(tmp_path / "vocab.txt")
    tokenizer = text_data.load_tokenizer(tmp_path / "vocab.txt", lowercase=True, max_length=64)
    torch.manual_seed(0)
    model = zoo.create("bert_encoder", vocab_size=tokenizer.vocab_size, pooling="mean", normalize=True, **TINY)
    text_data.attach_tokenizer(model, tokenizer)
    return model, tokenizer


def test_infer_keeps_input_order_and_equals_one_text_at_a_time(model_with_tokenizer):
    model, tokenizer = model_with_tokenizer
    rng = random.Random(1)
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(1, 60))) for _ in range(40)]
    fast = text_data.infer(model, texts, max_tokens=128)  # several batches, shuffled by length
    model.packed_inference = False
    alone = torch.cat([text_data.infer(model, [t]) for t in texts])  # no padding at all
    assert fast.shape == (40, TINY["hidden_size"])
    torch.testing.assert_close(fast, alone, rtol=0, atol=TOLERANCE)
    model.packed_inference = True
    by_count = text_data.infer(model, texts, batch_size=3, max_tokens=10**6)
    torch.testing.assert_close(by_count, alone, rtol=0, atol=TOLERANCE)


def test_infer_refuses_bad_budgets(model_with_tokenizer):
    model, _ = model_with_tokenizer
    with pytest.raises(zoo.InvalidArgumentError, match="max_tokens"):
        text_data.infer(model, ["a"], max_tokens=0)
    with pytest.raises(zoo.InvalidArgumentError, match="batch_size"):
        text_data.infer(model, ["a"], batch_size=0)
