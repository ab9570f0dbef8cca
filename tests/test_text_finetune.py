"""A small encoder and the RNN family learn a tiny labelled text set made here, well above chance."""
from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("single_thread")

from test_text_support import single_thread  # noqa: E402, F401

import zoo  # noqa: E402
from zoo.data import text as text_data  # noqa: E402

POSITIVE = ["good", "great", "wonderful", "lovely", "excellent", "fun", "happy", "brilliant"]
NEGATIVE = ["bad", "awful", "boring", "terrible", "sad", "dull", "poor", "horrible"]
FILLER = ["the", "movie", "film", "was", "plot", "actors", "music", "really", "quite", "and", "a", "story",
          "ending", "scenes", "city", "night", "very", "it", "this", "of"]


def sentiment_texts(n: int, seed: int) -> tuple[list[str], list[int]]:
    """Sentences whose label is whether their one opinion word is positive (it may sit anywhere)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.randrange(2)
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))]
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels


def as_dataset(tokenizer, texts, labels):
    batch = tokenizer(texts, pad_to=24)
    return [{"input_ids": batch["input_ids"][i], "attention_mask": batch["attention_mask"][i],
             "labels": torch.tensor(labels[i])} for i in range(len(texts))]


def accuracy(model, texts, labels) -> float:
    predictions = text_data.infer(model, texts).argmax(dim=-1)
    return (predictions == torch.tensor(labels)).float().mean().item()


def _train(model, tokenizer, epochs, lr):
    from zoo.finetune import fit

    train_texts, train_labels = sentiment_texts(256, seed=0)
    fit(model, as_dataset(tokenizer, train_texts, train_labels), epochs=epochs, lr=lr, batch_size=32,
        strategy="no_freeze", precision="fp32", progress=False, verbose=False, seed=0)
    test_texts, test_labels = sentiment_texts(200, seed=1)
    return accuracy(model, test_texts, test_labels)


def test_small_encoder_fine_tunes_above_chance():
    torch.manual_seed(0)
    train_texts, _ = sentiment_texts(256, seed=0)
    tokenizer = text_data.train_tokenizer(train_texts, vocab_size=200, max_length=24)
    model = zoo.create("bert_classifier", num_classes=2, vocab_size=tokenizer.vocab_size, hidden_size=32,
                       num_layers=2, num_heads=4, intermediate_size=64, max_positions=32, dropout=0.0,
                       attention_dropout=0.0, pad_token_id=tokenizer.pad_token_id)
    text_data.attach_tokenizer(model, tokenizer)
    assert _train(model, tokenizer, epochs=8, lr=3e-3) >= 0.85


@pytest.mark.parametrize("name", ["lstm_classifier", "bigru_classifier"])
def test_rnn_trains_from_scratch_above_chance(name):
    torch.manual_seed(0)
    train_texts, _ = sentiment_texts(256, seed=0)
    model = zoo.create(name, num_classes=2, vocab_size=200, embed_dim=32, hidden_size=32)
    tokenizer = text_data.tokenizer_for(model, train_texts=train_texts)
    assert _train(model, tokenizer, epochs=6, lr=1e-2) >= 0.85
