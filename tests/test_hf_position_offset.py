"""A checkpoint whose positions start after the padding row (RoBERTa's scheme) is cut by that offset because the card
that builds it says so (extra["hf_positions_after_padding"]), not because zoo lists its model type."""
from __future__ import annotations

import pytest

transformers = pytest.importorskip("transformers")

import zoo  # noqa: E402


def _checkpoint(tmp_path, model_type, **config):
    folder = tmp_path / model_type
    hf_config = transformers.AutoConfig.for_model(
        model_type, vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=37,
        num_labels=2, **config)
    transformers.AutoModelForSequenceClassification.from_config(hf_config).save_pretrained(folder)
    return f"local-dir:{folder}"


@pytest.mark.parametrize("model_type", ["roberta-prelayernorm", "data2vec-text"])
def test_the_transformers_family_reads_the_offset_off_the_model(tmp_path, model_type):
    card = zoo.get_card(_checkpoint(tmp_path, model_type, max_position_embeddings=42, pad_token_id=1))
    assert card.name == "transformers/text-classification"
    assert card.extra["hf_positions_after_padding"] is True and card.input.max_length == 40


def test_a_model_numbering_positions_from_zero_keeps_the_whole_table(tmp_path):
    card = zoo.get_card(_checkpoint(tmp_path, "electra", max_position_embeddings=42, pad_token_id=1))
    assert card.extra["hf_positions_after_padding"] is False and card.input.max_length == 42

