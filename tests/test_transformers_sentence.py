"""sentence-transformers repos: zoo embeds as sentence-transformers does (its pooling mode, Normalize and
max_seq_length), for native encoders and the transformers family alike, and refuses what it cannot reproduce."""
from __future__ import annotations

import json
import warnings

import pytest
import torch
from transformers_helpers import family_fixture, random_model, transformers

import zoo

__all__ = ["family_fixture"]

st = pytest.importorskip("sentence_transformers")
WORDS = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "fast"]
TEXTS = ["the cat sat on the mat", "a dog ran far away fast", "the dog"]


def tokenizer(directory):
    """A word-level tokenizer saved as transformers saves one (tokenizer.json and its config)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2),
                                                                                                 ("[SEP]", 3)])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]",
                                                cls_token="[CLS]", sep_token="[SEP]", model_max_length=32)
    fast.save_pretrained(directory)
    return fast


def st_folder(tmp_path, config, pooling, normalize, extra=()):
    """A sentence-transformers repo written by sentence-transformers: encoder, Pooling(mode), [Normalize]."""
    from sentence_transformers.sentence_transformer import modules

    base = tmp_path / "base"
    random_model("AutoModel", config).save_pretrained(base)
    tokenizer(base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        encoder = modules.Transformer(str(base), max_seq_length=16)
        parts = [encoder, modules.Pooling(config.hidden_size, pooling_mode=pooling), *extra]
        if normalize:
            parts.append(modules.Normalize())
        model = st.SentenceTransformer(modules=parts, device="cpu")
    out = tmp_path / "st"
    model.save(str(out))
    return model, out


def zoo_embeddings(name, fast):
    model = zoo.create(name).eval()
    batch = fast(TEXTS, padding=True, truncation=True, max_length=model.zoo_card.input.max_length,
                 return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        return model(**batch), model


def deberta():
    return transformers.DebertaV2Config(vocab_size=len(WORDS) + 4, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=4, intermediate_size=37, max_position_embeddings=64,
                                        pad_token_id=0)


def bert():
    return transformers.BertConfig(vocab_size=len(WORDS) + 4, hidden_size=32, num_hidden_layers=2,
                                   num_attention_heads=4, intermediate_size=37, max_position_embeddings=64)


@pytest.mark.parametrize("pooling, normalize", [("cls", True), ("mean", False), ("max", True), ("lasttoken", False)])
def test_family_pools_as_sentence_transformers(family, tmp_path, pooling, normalize):
    reference, folder = st_folder(tmp_path, deberta(), pooling, normalize)
    got, model = zoo_embeddings(f"local-dir:{folder}", tokenizer(tmp_path / "tok"))
    expected = reference.encode(TEXTS, convert_to_tensor=True)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)
    assert model.zoo_card.input.max_length == 16
    assert model.zoo_card.extra["sentence_pooling"]["pooling"] == pooling


@pytest.mark.parametrize("pooling, normalize", [("cls", True), ("mean", False)])
def test_native_encoder_pools_as_sentence_transformers(family, tmp_path, pooling, normalize):
    reference, folder = st_folder(tmp_path, bert(), pooling, normalize)
    got, model = zoo_embeddings(f"local-dir:{folder}", tokenizer(tmp_path / "tok"))
    assert model.zoo_card.family == "bert"  # the native encoder stays the default for BERT
    torch.testing.assert_close(got, reference.encode(TEXTS, convert_to_tensor=True), atol=1e-5, rtol=0)


def test_native_encoder_refuses_a_pooling_it_cannot_reproduce(family, tmp_path):
    _, folder = st_folder(tmp_path, bert(), "max", False)
    with pytest.raises(zoo.WeightsError, match="'max'.*cannot reproduce"):
        zoo.create(f"local-dir:{folder}")


def test_modules_beyond_pooling_and_normalize_are_refused(family, tmp_path):
    from sentence_transformers.sentence_transformer import modules

    _, folder = st_folder(tmp_path, deberta(), "mean", False, extra=[modules.Dense(32, 8)])
    with pytest.raises(zoo.WeightsError, match="Dense"):
        zoo.create(f"local-dir:{folder}")


def test_concatenated_poolings_are_refused(family, tmp_path):
    _, folder = st_folder(tmp_path, deberta(), "mean", False)
    config = folder / "1_Pooling" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "pooling_mode": ["cls", "mean"]}))
    with pytest.raises(zoo.WeightsError, match="cannot be reproduced exactly"):
        zoo.create(f"local-dir:{folder}")
