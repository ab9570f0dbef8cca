"""Token classification end to end: token-labelled JSONL/CoNLL, labels aligned to sub-word tokens,
a per-token loss that leaves out padding and -100, accuracy over labelled tokens, fit and evaluate."""
from __future__ import annotations

import json
import random

import pytest
import torch
from test_text_support import single_thread, write_vocab  # noqa: F401

import zoo
import zoo.data
from zoo.data import text as text_data
from zoo.data.tokens import TokenTable, align_labels
from zoo.errors import DataError
from zoo.finetune import evaluate, fit
from zoo.finetune.loop import cross_entropy

pytestmark = pytest.mark.usefixtures("single_thread")

QUIET = {"progress": False, "verbose": False}
PEOPLE, PLACES = ["bob", "kim", "zed"], ["paris", "oslo", "rome"]  # not in the vocabulary: split into pieces
FILLER = "the is was in on at it this that with for dog cat city river tree house".split()


def _sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    rng = random.Random(seed)
    sentences = []
    for _ in range(n):
        words = [rng.choice(FILLER) for _ in range(rng.randint(2, 5))]
        for name in (rng.choice(PEOPLE), rng.choice(PLACES))[:rng.randint(1, 2)]:
            words.insert(rng.randrange(len(words) + 1), name)
        sentences.append((words, ["PER" if w in PEOPLE else "LOC" if w in PLACES else "O" for w in words]))
    return sentences


def _jsonl(path, sentences):
    path.write_text("".join(json.dumps({"tokens": w, "labels": labels}) + "\n" for w, labels in sentences))
    return path


def _conll(path, sentences):
    blocks = ["-DOCSTART- -X- O O\n"] + ["".join(f"{w}\tNN\t{label}\n" for w, label in zip(*s)) for s in sentences]
    path.write_text("\n".join(blocks))
    return path


@pytest.fixture
def tokenizer(tmp_path):
    write_vocab(tmp_path / "vocab.txt")
    return text_data.load_tokenizer(tmp_path / "vocab.txt", lowercase=True, max_length=64)


def _model(tokenizer, classes: int):
    torch.manual_seed(0)
    model = zoo.create("bert_token_classifier", num_classes=classes, vocab_size=tokenizer.vocab_size, hidden_size=32,
                       num_layers=2, num_heads=4, intermediate_size=64, max_positions=64, dropout=0.0,
                       attention_dropout=0.0, pad_token_id=tokenizer.pad_token_id)
    text_data.attach_tokenizer(model, tokenizer)
    return model


# ---------------------------------------------------------------------------- reading and aligning


def test_jsonl_and_conll_read_the_same_sentences_and_classes(tmp_path):
    sentences = _sentences(6, seed=0)
    from_json = TokenTable(_jsonl(tmp_path / "ner.jsonl", sentences), train=True)
    from_conll = TokenTable(_conll(tmp_path / "ner.conll", sentences), train=True)
    assert from_json.classes == from_conll.classes == ["LOC", "O", "PER"]
    assert from_json.sentences == from_conll.sentences == [words for words, _ in sentences]
    assert from_json.targets == from_conll.targets
    assert zoo.data.class_names(tmp_path / "ner.conll") == zoo.data.class_names(tmp_path / "ner.jsonl") \
        == ["LOC", "O", "PER"]  # what `zoo finetune` sizes the head with


def test_a_words_first_sub_token_gets_its_label_and_the_rest_minus_100(tokenizer):
    words = ["the", "bob", "ran"]  # [CLS] the b ##o ##b ran [SEP]
    batch, word_ids = tokenizer.encode_words([words, ["dog"]])
    assert word_ids[0] == [None, 0, 1, 1, 1, 2, None] and word_ids[1][:3] == [None, 0, None]
    assert align_labels(word_ids[0], [5, 6, 7]) == [-100, 5, 6, -100, -100, 7, -100]
    assert batch["attention_mask"][1].tolist() == [1, 1, 1, 0, 0, 0, 0]


def test_collated_labels_leave_out_special_tokens_sub_tokens_and_padding(tmp_path, tokenizer):
    table = TokenTable(_jsonl(tmp_path / "ner.jsonl", [(["the", "bob"], ["O", "PER"]), (["rome"], ["LOC"])]),
                       tokenizer=tokenizer)
    batch = table.collate_fn([table[0], table[1]])
    assert batch["labels"].tolist() == [[-100, 1, 2, -100, -100, -100], [-100, 0, -100, -100, -100, -100]]
    assert batch["input_ids"].shape == batch["labels"].shape


def test_bad_token_files_are_named_with_the_line(tmp_path):
    (tmp_path / "short.jsonl").write_text(json.dumps({"tokens": ["a", "b"], "labels": ["O"]}) + "\n")
    with pytest.raises(DataError, match=r"short.jsonl, line 1: needs a list of words in 'tokens' and a list of as"):
        TokenTable(tmp_path / "short.jsonl")
    (tmp_path / "one.conll").write_text("John B-PER\nlives\n")
    with pytest.raises(DataError, match=r"one.conll, line 2: expected a word and its label"):
        TokenTable(tmp_path / "one.conll")
    with pytest.raises(DataError, match="at least two classes"):
        TokenTable(_jsonl(tmp_path / "all_o.jsonl", [(["the", "dog"], ["O", "O"])]), train=True)
    unknown = _conll(tmp_path / "ner.conll", [(["bob"], ["PER"])])
    with pytest.raises(DataError, match=r"not trained on: \['PER'\]"):
        TokenTable(unknown, classes=["LOC", "O"])


# ---------------------------------------------------------------------------- loss and metrics


def test_the_loss_is_per_token_and_ignores_minus_100():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3)
    target = torch.tensor([[0, 2, -100, -100], [1, -100, -100, -100]])
    expected = torch.nn.functional.cross_entropy(logits[target != -100], target[target != -100])
    assert torch.allclose(cross_entropy(logits, target), expected)
    changed = logits.clone()
    changed[target == -100] = 100.0  # scores at unlabelled tokens change nothing
    assert torch.allclose(cross_entropy(changed, target), expected)
    assert cross_entropy(logits, torch.full((2, 4), -100)).item() == 0.0  # no labelled token: 0, not NaN


def test_padding_never_counts_even_when_the_data_labels_it(tokenizer):
    model = _model(tokenizer, 3)
    batch, _ = tokenizer.encode_words([["the", "dog", "is", "in", "the", "house"], ["bob"]])
    labels = torch.ones_like(batch["input_ids"])  # class 1 everywhere, padding included
    data = [{**{k: v[i] for k, v in batch.items()}, "labels": labels[i]} for i in range(2)]
    measured = evaluate(model, data, batch_size=2, **QUIET)
    assert sum(map(sum, measured["confusion"])) == int(batch["attention_mask"].sum())  # real tokens only


# ---------------------------------------------------------------------------- end to end


def test_a_tiny_token_classifier_fine_tunes_and_evaluates_end_to_end(tmp_path, tokenizer):
    train_file = _jsonl(tmp_path / "train.jsonl", _sentences(64, seed=0))
    val_sentences = _sentences(24, seed=1)
    val_file = _conll(tmp_path / "val.conll", val_sentences)
    classes = zoo.data.class_names(train_file, train=True)
    model = _model(tokenizer, len(classes))
    train = zoo.data.dataset_for(model, train_file, train=True)
    val = zoo.data.dataset_for(model, val_file, classes=train.classes)
    result = fit(model, train, val, epochs=6, lr=3e-3, batch_size=16, strategy="no_freeze", precision="fp32",
                 seed=0, checkpoint_dir=tmp_path / "run", **QUIET)
    best = result.best
    words = sum(len(w) for w, _ in val_sentences)
    assert sum(map(sum, best["val_confusion"])) == words  # one prediction per labelled word: no sub-tokens, no padding
    assert best["val_samples"] == len(val_sentences)
    assert best["val_accuracy"] >= 0.95 > result.history[0]["train_accuracy"]
    assert evaluate(model, val, **QUIET)["accuracy"] == pytest.approx(result.last["val_accuracy"])
    # the saved model loads again with its labels and tokenizer, and measures the same on the CoNLL file
    saved = zoo.create(f"local-dir:{result.best_dir}")
    assert zoo.card_of(saved).task == "token-classification" and zoo.card_of(saved).extra["labels"] == classes
    measured = evaluate(saved, zoo.data.dataset_for(saved, val_file, classes=classes), **QUIET)
    assert measured["confusion"] == best["val_confusion"]
