"""Text checkpoints of model types no native encoder covers, through the transformers family: zoo's outputs
equal transformers' own on the same files, from a folder and from a local Hub cache."""
from __future__ import annotations

import torch
from transformers_helpers import family_fixture, hub_cache, random_model, save, serve, text_batch, transformers

__all__ = ["family_fixture"]


def deberta(**kw):
    return transformers.DebertaV2Config(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                        intermediate_size=37, max_position_embeddings=64, **kw)


def test_deberta_classifier_from_folder_equals_transformers(family, tmp_path):
    config = deberta(num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"}, label2id={"neg": 0, "neu": 1, "pos": 2})
    theirs = random_model("AutoModelForSequenceClassification", config)
    save(theirs, tmp_path / "ckpt")
    ours = family.create(f"local-dir:{tmp_path / 'ckpt'}").eval()
    batch = text_batch()
    with torch.no_grad():
        expected = theirs(**batch).logits
        got = ours(**batch)
    assert type(got) is torch.Tensor
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    card = ours.zoo_card
    assert (card.family, card.task, card.head) == ("transformers", "text-classification", "classifier")
    assert card.extra["labels"] == ["neg", "neu", "pos"]
    assert list(card.layer_groups[:1]) == ["deberta.embeddings"] and "deberta.encoder.layer.1" in card.layer_groups
    assert card.layer_groups[-1] == "classifier"


def test_hub_cache_and_new_head(family, tmp_path, monkeypatch):
    cache = hub_cache(tmp_path, monkeypatch)
    theirs = random_model("AutoModelForSequenceClassification", deberta(num_labels=2))
    serve(save(theirs, tmp_path / "ckpt"), cache, "acme/deberta-tiny")
    five = family.create("hf-hub:acme/deberta-tiny", num_classes=5).eval()
    assert five(**text_batch()).shape == (2, 5)
    pooled = family.create("hf-hub:acme/deberta-tiny", num_classes=0).eval()
    with torch.no_grad():
        base = theirs.deberta(**text_batch()).last_hidden_state
        expected = theirs.pooler(base)
        torch.testing.assert_close(pooled(**text_batch()), expected, atol=1e-5, rtol=0)
