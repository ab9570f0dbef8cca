"""`zoo.pipeline` on texts batches them as `zoo.data.text.infer` does: sorted by length, cut by a token budget,
with results equal to the count-batched path and in input order."""
from __future__ import annotations

import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tokenizers")

from test_text_support import TINY, WORDS, write_vocab  # noqa: E402

import zoo  # noqa: E402
from zoo.data import text as text_data  # noqa: E402

TOLERANCE = 1e-5
BUDGET = 160
MOST_ROWS = 12


def mixed_texts(count: int = 40, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.choice([1, 2, 5, 9, 20, 45]))) for _ in range(count)]


def text_model(tmp_path, name: str, **options):
    write_vocab(tmp_path / "vocab.txt")
    tokenizer = text_data.load_tokenizer(tmp_path / "vocab.txt", lowercase=True, max_length=64)
    torch.manual_seed(0)
    model = zoo.create(name, vocab_size=tokenizer.vocab_size, **TINY, **options)
    text_data.attach_tokenizer(model, tokenizer)
    return model


def spy_on_batches(model) -> list[tuple[int, int]]:
    """The ``[rows, length]`` of every batch the model is called on."""
    shapes: list[tuple[int, int]] = []
    model.register_forward_pre_hook(lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)),
                                    with_kwargs=True)
    return shapes


def count_batched(pipe, texts: list[str], size: int = 5) -> list:
    """The plain path: `size` texts at a time, in input order, each batch padded to its longest."""
    results: list = []
    for start in range(0, len(texts), size):
        results += pipe.run(texts[start:start + size], top_k=pipe.top_k)
    return results


def check_budget(shapes: list[tuple[int, int]], count: int) -> None:
    assert sum(rows for rows, _ in shapes) == count
    assert all(rows <= MOST_ROWS and (rows * length <= BUDGET or rows == 1) for rows, length in shapes)
    lengths = [length for _, length in shapes]
    assert lengths == sorted(lengths, reverse=True)  # longest texts first: rows of like length together
    assert max(rows for rows, _ in shapes) == MOST_ROWS  # short texts share the largest batches
    assert shapes[0][0] < MOST_ROWS  # while long texts go in small ones


def test_text_classification_batches_by_token_budget_and_keeps_input_order(tmp_path):
    model = text_model(tmp_path, "bert_classifier", num_classes=4)
    texts = mixed_texts()
    pipe = zoo.pipeline(model, batch_size=MOST_ROWS, max_tokens=BUDGET, top_k=4)
    shapes = spy_on_batches(model)
    fast = pipe(texts)
    check_budget(shapes, len(texts))
    plain = count_batched(pipe, texts)
    assert len(fast) == len(plain) == len(texts)
    for got, want in zip(fast, plain):
        assert [p["label"] for p in got] == [p["label"] for p in want]
        np.testing.assert_allclose([p["score"] for p in got], [p["score"] for p in want], rtol=0, atol=TOLERANCE)
    # input order: each result is that text's own, as when it runs alone
    for i in (0, 7, len(texts) - 1):
        alone = pipe([texts[i]])[0]
        np.testing.assert_allclose([p["score"] for p in fast[i]], [p["score"] for p in alone], rtol=0,
                                   atol=TOLERANCE)


def test_token_classification_keeps_each_texts_entities_in_input_order(tmp_path):
    model = text_model(tmp_path, "bert_token_classifier", num_classes=3)
    texts = mixed_texts(seed=5)
    pipe = zoo.pipeline(model, batch_size=MOST_ROWS, max_tokens=BUDGET)
    shapes = spy_on_batches(model)
    fast = pipe(texts)
    check_budget(shapes, len(texts))
    plain = count_batched(pipe, texts)
    for got, want in zip(fast, plain):
        assert [(e["index"], e["entity"], e["word"]) for e in got] == [(e["index"], e["entity"], e["word"])
                                                                      for e in want]
        np.testing.assert_allclose([e["score"] for e in got], [e["score"] for e in want], rtol=0, atol=TOLERANCE)


def test_pooled_embeddings_equal_the_count_batched_ones_and_text_infer(tmp_path):
    model = text_model(tmp_path, "bert_encoder", pooling="mean", normalize=True)
    texts = mixed_texts(seed=7)
    pipe = zoo.pipeline(model, batch_size=MOST_ROWS, max_tokens=BUDGET)
    shapes = spy_on_batches(model)
    fast = np.stack(pipe(texts))
    check_budget(shapes, len(texts))
    plain = np.stack(count_batched(pipe, texts))
    np.testing.assert_allclose(fast, plain, rtol=0, atol=TOLERANCE)
    shapes.clear()
    inferred = text_data.infer(model, texts, batch_size=MOST_ROWS, max_tokens=BUDGET)
    np.testing.assert_allclose(fast, inferred.numpy(), rtol=0, atol=TOLERANCE)


def test_a_bad_token_budget_is_a_clear_error(tmp_path):
    model = text_model(tmp_path, "bert_encoder", pooling="mean")
    with pytest.raises(zoo.InvalidArgumentError, match="max_tokens"):
        zoo.pipeline(model, max_tokens=0)
