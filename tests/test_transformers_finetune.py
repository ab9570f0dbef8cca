"""zoo's fine-tune API on transformers-family models (layer decay over the checkpoint's own layer groups, LoRA
on its attention and MLP layers), and the interchange: saved by zoo, loaded by transformers, and back."""
from __future__ import annotations

import json

import pytest
import torch
from transformers_helpers import family_fixture, random_model, save, text_batch, transformers

import zoo
import zoo.finetune as ft

__all__ = ["family_fixture"]


def checkpoint(tmp_path):
    config = transformers.DebertaV2Config(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                          intermediate_size=37, max_position_embeddings=64, num_labels=2)
    return save(random_model("AutoModelForSequenceClassification", config), tmp_path / "ckpt")


def two_steps(model, params):
    optimizer = torch.optim.AdamW(params)
    batch, target = text_batch(), torch.tensor([0, 2])
    model.train()
    losses = []
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(**batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def test_layer_decay_over_the_checkpoints_layers(family, tmp_path):
    model = family.create(f"local-dir:{checkpoint(tmp_path)}", num_classes=3)
    groups = ft.param_groups(model, 1e-3, layer_decay=0.5)
    rates = [g["lr"] for g in groups if g["params"]]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(1e-3) and rates[0] < 1e-3 / 4
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    two_steps(model, groups)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert "classifier.weight" in changed and any(n.startswith("deberta.embeddings") for n in changed)


def test_lora_then_saved_model_loads_in_transformers_and_zoo(family, tmp_path):
    model = family.create(f"local-dir:{checkpoint(tmp_path)}", num_classes=3)
    adapted = ft.apply_lora(model, rank=4)
    assert any(".attention.self.query_proj" in n for n in adapted) and any("intermediate.dense" in n for n in adapted)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora" in n or n.startswith("classifier") for n in trainable)
    two_steps(model, [p for p in model.parameters() if p.requires_grad])
    model.eval()
    out = tmp_path / "saved"
    zoo.save_pretrained(model, out, labels=["a", "b", "c"])
    batch = text_batch()
    with torch.no_grad():
        expected = model(**batch)
        theirs = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
        torch.testing.assert_close(theirs(**batch).logits, expected, atol=1e-5, rtol=0)
        assert theirs.config.id2label == {0: "a", 1: "b", 2: "c"}
        again = zoo.create(f"local-dir:{out}").eval()
        torch.testing.assert_close(again(**batch), expected, atol=1e-5, rtol=0)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["DebertaV2ForSequenceClassification"] and "zoo" in config


def test_features_model_saved_loads_as_automodel(family, tmp_path):
    model = family.create(f"local-dir:{checkpoint(tmp_path)}", task="feature-extraction").eval()
    out = zoo.save_pretrained(model, tmp_path / "saved")
    theirs = transformers.AutoModel.from_pretrained(out).eval()
    batch = text_batch()
    with torch.no_grad():
        hidden = theirs(**batch).last_hidden_state
        mask = batch["attention_mask"][..., None].float()
        torch.testing.assert_close(model(**batch), (hidden * mask).sum(1) / mask.sum(1), atol=1e-5, rtol=0)
