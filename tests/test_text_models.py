"""The text family's cards, modules and their contract with the fine-tune API."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("single_thread")

from test_text_support import TINY, padded_batch, single_thread  # noqa: E402, F401

import zoo  # noqa: E402
from zoo.finetune._select import under  # noqa: E402

TEXT_MODELS = ["bert_base_uncased", "bert_base_cased", "bert_large_uncased", "bert_large_cased",
               "bert_base_multilingual_cased", "distilbert_base_uncased", "roberta_base", "all_minilm_l6_v2",
               "paraphrase_minilm_l6_v2", "bert_base_ner", "lstm_classifier", "bilstm_classifier", "gru_classifier"]
RECIPES = ["bert_ft", "distilbert_ft", "minilm_ft"]


def test_catalogue_lists_the_family_with_hub_weights():
    names = zoo.list_models(modality="text")
    assert set(TEXT_MODELS + RECIPES) <= set(names)
    assert "all_minilm_l6_v2" in zoo.list_models(task="feature-extraction")
    assert "bert_base_ner" in zoo.list_models(task="token-classification")
    for name in zoo.list_models(modality="text", family="bert"):
        card = zoo.get_card(name)
        if card.recipe is not None or not card.weights:
            continue
        weights = card.weights[card.default_weights]
        assert weights.source.startswith("hf-hub:") and weights.key_map.startswith("zoo_text.hf_checkpoints:")
        assert card.input.tokenizer == weights.source  # the tokenizer comes from the same repo
        assert "lora_targets" in card.extra
    assert zoo.get_card("bert_base_uncased").weights["hf"].source == "hf-hub:google-bert/bert-base-uncased"
    assert zoo.get_card("all_minilm_l6_v2").defaults["normalize"] is True
    for name in RECIPES:
        assert zoo.get_card(name).recipe.required == ("num_classes",)


def test_generic_cards_declare_how_to_load_transformers_checkpoints():
    from zoo.weights.loading import import_function

    for arch, types in (("bert", ["bert"]), ("distilbert", ["distilbert"]), ("roberta", ["roberta"])):
        for name in (f"{arch}_encoder", f"{arch}_classifier", f"{arch}_token_classifier"):
            extra = zoo.get_card(name).extra
            assert set(types) <= set(extra["hf_model_types"])
            assert callable(import_function(extra["hf_config_to_kwargs"], "config"))
            assert callable(import_function(extra["hf_key_map"], "keys"))


def _check_head_and_groups(model):
    from zoo.finetune.groups import group_prefixes
    from zoo.finetune.heads import get_head

    card = zoo.card_of(model)
    get_head(model)  # the head exists
    prefixes = group_prefixes(model)
    assert prefixes[-1] == card.head
    for name, _ in model.named_parameters():
        owners = [p for p in prefixes if under(name, p)]
        assert len(owners) == 1, (name, owners)  # every parameter in exactly one group


@pytest.mark.parametrize("name", ["paraphrase_minilm_l3_v2", "lstm_classifier", "bigru_classifier"])
def test_representative_cards_build_with_head_and_layer_groups(name):
    model = zoo.create(name)
    _check_head_and_groups(model)
    with_head = zoo.create(name, num_classes=5)
    _check_head_and_groups(with_head)
    ids, mask = padded_batch(100, 0)
    assert with_head(ids, mask).shape[-1] == 5


@pytest.mark.slow
def test_every_text_card_builds_with_head_and_layer_groups():
    for name in zoo.list_models(modality="text"):
        card = zoo.get_card(name)
        if card.recipe is not None or card.family == "transformers":  # that family's sweep: test_transformers_catalog
            continue
        device = "cpu" if card.family == "rnn" else "meta"  # meta: no minutes spent on random initialisation
        with torch.device(device):
            model = zoo.create(name)
            _check_head_and_groups(model)
            ids, mask = padded_batch(100, card.defaults.get("pad_token_id", 0))
            assert model(ids.to(device), mask.to(device)).shape[0] == 3


@pytest.mark.parametrize("name,options", [
    ("bert_classifier", {}), ("bert_encoder", {}), ("bert_token_classifier", {"num_classes": 4}),
    ("roberta_classifier", {"pooler_dense": True}), ("distilbert_encoder", {"normalize": True}),
])
def test_padding_does_not_change_a_sequence_result(name, options):
    model = zoo.create(name, vocab_size=100, **TINY, **options).eval()
    pad = zoo.card_of(model).defaults["pad_token_id"]
    ids, mask = padded_batch(100, pad, lengths=(12, 5))
    with torch.no_grad():
        alone = model(ids[1:, :5], mask[1:, :5])[0]
        batched = model(ids, mask)[1]
    if batched.dim() == 2:  # token classification: compare real tokens
        batched = batched[:5]
    assert torch.allclose(alone, batched, atol=1e-5)


def test_attention_runs_all_heads_in_one_fused_call(monkeypatch):
    import torch.nn.functional as F

    model = zoo.create("bert_encoder", vocab_size=100, **{**TINY, "num_layers": 3}).eval()
    calls = []
    original = F.scaled_dot_product_attention

    def counting(q, k, v, **kwargs):
        calls.append((q.shape, kwargs.get("attn_mask") is not None))
        return original(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting)
    ids, mask = padded_batch(100, 0)
    with torch.no_grad():
        model(ids, mask)
        model(ids)
    assert len(calls) == 6  # once per layer and call
    assert calls[0] == (torch.Size([3, 4, 9, 8]), True) and calls[-1][1] is False  # [batch, heads, length, dim]


def test_layer_decay_and_lora_through_the_finetune_api():
    from zoo.finetune import param_groups
    from zoo.finetune.lora import apply_lora, merge_lora

    model = zoo.create("distilbert_base_uncased", num_classes=3, vocab_size=100, **{**TINY, "num_layers": 6})
    groups = param_groups(model, 1e-3, layer_decay=0.5)
    rates = {g["group"]: g["lr"] for g in groups}
    assert rates["head"] == pytest.approx(1e-3)
    assert rates["layers.5"] > rates["layers.0"] > rates["embeddings"]
    ids, mask = padded_batch(100, 0)
    model.eval()
    with torch.no_grad():
        before = model(ids, mask)
    adapted = apply_lora(model)
    assert len(adapted) == 6 * 4 and all(".attn." in n or ".mlp." in n for n in adapted)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora" in n or n.startswith("head.") for n in trainable)
    with torch.no_grad():
        assert torch.allclose(model(ids, mask), before, atol=1e-6)
        merge_lora(model)
        assert torch.allclose(model(ids, mask), before, atol=1e-6)


def test_builder_rejects_unknown_options():
    with pytest.raises(zoo.InvalidArgumentError, match="hidden_dim"):
        zoo.create("bert_encoder", hidden_dim=3)
    with pytest.raises(zoo.InvalidArgumentError, match="pooling"):
        zoo.create("bert_encoder", pooling="max", **TINY)
