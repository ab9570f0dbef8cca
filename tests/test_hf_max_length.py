"""A transformers checkpoint's text card never promises more tokens than the checkpoint takes: its max_length is the
shortest of the family's, the position table's usable rows and tokenizer_config.json's model_max_length."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from test_text_support import single_thread, tiny_hf_model  # noqa: E402, F401

import zoo  # noqa: E402

pytestmark = pytest.mark.usefixtures("single_thread")


def _checkpoint(tmp_path, arch, tokenizer_config=None, **config):
    folder = tmp_path / arch
    tiny_hf_model(arch, "ForSequenceClassification", num_labels=2, **config).eval().save_pretrained(folder)
    if tokenizer_config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


def test_a_short_position_table_lowers_max_length(tmp_path):
    folder = _checkpoint(tmp_path, "bert", max_position_embeddings=40)
    assert zoo.get_card(f"local-dir:{folder}").input.max_length == 40


def test_roberta_positions_lose_the_padding_offset_and_the_limit_is_tight(tmp_path):
    folder = _checkpoint(tmp_path, "roberta", max_position_embeddings=42, pad_token_id=1)
    model = zoo.create(f"local-dir:{folder}").eval()
    limit = zoo.card_of(model).input.max_length
    assert limit == 40  # positions are numbered from pad_token_id + 1 = 2
    ids = torch.full((1, limit), 5)
    with torch.no_grad():
        assert model(ids).shape == (1, 2)  # a sequence of max_length tokens fits the position table
        with pytest.raises(IndexError):
            model(torch.full((1, limit + 1), 5))  # one more would not: the limit is the table's own


@pytest.mark.parametrize(("model_max_length", "expected"), [(24, 24), (10**30, 40), (0, 40), ("long", 40)])
def test_tokenizer_config_lowers_max_length_when_sane(tmp_path, model_max_length, expected):
    folder = _checkpoint(tmp_path, "bert", {"model_max_length": model_max_length}, max_position_embeddings=40)
    assert zoo.get_card(f"local-dir:{folder}").input.max_length == expected


def test_the_family_length_stays_when_the_checkpoint_allows_more(tmp_path):
    folder = _checkpoint(tmp_path, "bert", {"model_max_length": 4096}, max_position_embeddings=1024)
    assert zoo.get_card(f"local-dir:{folder}").input.max_length == 512


def test_a_tokenizer_config_linking_out_of_the_folder_is_not_read(tmp_path):
    folder = _checkpoint(tmp_path, "bert", max_position_embeddings=40)
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"model_max_length": 12}))
    (folder / "tokenizer_config.json").symlink_to(outside)
    assert zoo.get_card(f"local-dir:{folder}").input.max_length == 40  # not 12: zoo reads only the folder's files
