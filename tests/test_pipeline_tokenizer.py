"""``zoo.pipeline("local-dir:...")`` on a BERT text classifier saved with a real WordPiece ``tokenizer.json``: texts
are tokenized exactly as that tokenizer does ([CLS] ... [SEP], lower-cased, accents stripped, word pieces, [UNK],
truncated at the model's max_length) and the results are labels with the model's own scores."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_text_support import single_thread  # noqa: F401

import zoo

tokenizers = pytest.importorskip("tokenizers")
pytestmark = pytest.mark.usefixtures("single_thread")

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = ["the", "a", "film", "was", "great", "bad", "plot", "cafe", "play", "##ing", "##ed", "un", "##able", "!",
         ".", ",", "very", "music", "and", "boring"]
VOCAB = {token: index for index, token in enumerate(SPECIALS + WORDS)}
LABELS = ["negative", "positive"]
SHAPE = {"hidden_size": 32, "num_heads": 4, "intermediate_size": 48}  # the card's 12 layers (its layer groups)
TEXTS = ["The FILM was great!", "a boring plot, played badly", "Café music", "", "the film"]


def write_tokenizer(folder: Path) -> Path:
    """A BERT WordPiece tokenizer.json as BertWordPieceTokenizer builds it: BERT normaliser (clean text, CJK
    spacing, accents stripped, lower case), BERT pre-tokenizer, WordPiece with [UNK], [CLS] A [SEP] template."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tokenizer = Tokenizer(WordPiece(VOCAB, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", VOCAB["[CLS]"]), ("[SEP]", VOCAB["[SEP]"])])
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def zoo_folder(tmp_path: Path) -> Path:
    """A BERT classifier saved by `zoo.save_pretrained`, its tokenizer.json beside the weights."""
    torch.manual_seed(0)
    model = zoo.create("bert_base_uncased", num_classes=2, vocab_size=len(VOCAB), **SHAPE)
    folder = zoo.save_pretrained(model, tmp_path / "zoo_saved", labels=LABELS)
    write_tokenizer(folder)
    return folder


def transformers_folder(tmp_path: Path) -> Path:
    """A transformers BertForSequenceClassification checkpoint (config.json with id2label, model.safetensors) and
    its tokenizer.json, as a model repo holds them."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=48, num_labels=2,
                                     id2label=dict(enumerate(LABELS)), label2id={k: i for i, k in enumerate(LABELS)})
    folder = tmp_path / "hf_saved"
    transformers.BertForSequenceClassification(config).eval().save_pretrained(folder)
    write_tokenizer(folder)
    return folder


def reference_ids(folder: Path, texts: list[str], max_length: int) -> list[list[int]]:
    """What the tokenizer itself gives for each text, truncated at `max_length`, unpadded."""
    reference = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
    reference.enable_truncation(max_length=max_length)
    return [encoding.ids for encoding in reference.encode_batch(texts)]


def recorded_inputs(model: torch.nn.Module) -> list[dict[str, torch.Tensor]]:
    """Every batch the model is called with, as keyword arguments."""
    calls: list[dict[str, torch.Tensor]] = []

    def record(module, args, kwargs):
        calls.append({k: v.clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})

    model.register_forward_pre_hook(record, with_kwargs=True)
    return calls


@pytest.mark.parametrize("layout", ["zoo", "transformers"])
def test_texts_are_tokenized_as_the_saved_tokenizer_does_and_give_labels_and_scores(tmp_path, layout):
    folder = zoo_folder(tmp_path) if layout == "zoo" else transformers_folder(tmp_path)
    classify = zoo.pipeline(f"local-dir:{folder}", top_k=2)
    calls = recorded_inputs(classify.model)

    results = classify(TEXTS)

    expected_ids = reference_ids(folder, TEXTS, max_length=512)
    assert expected_ids[0] == [VOCAB[t] for t in ("[CLS]", "the", "film", "was", "great", "!", "[SEP]")]
    assert expected_ids[1][5:8] == [VOCAB["play"], VOCAB["##ed"], VOCAB["[UNK]"]]  # word pieces; "badly" unknown
    assert expected_ids[2] == [VOCAB["[CLS]"], VOCAB["cafe"], VOCAB["music"], VOCAB["[SEP]"]]  # accent stripped
    assert expected_ids[3] == [VOCAB["[CLS]"], VOCAB["[SEP]"]]
    assert len(calls) == 1  # one batch
    batch = calls[0]
    mask = batch["attention_mask"]
    assert [row[m.bool()].tolist() for row, m in zip(batch["input_ids"], mask)] == expected_ids
    assert mask.sum(1).tolist() == [len(i) for i in expected_ids]
    assert batch["input_ids"][~mask.bool()].eq(VOCAB["[PAD]"]).all()  # right padding with [PAD]

    assert len(results) == len(TEXTS)
    model = classify.model
    for text_ids, result in zip(expected_ids, results):
        assert [p["label"] for p in result] in (LABELS, LABELS[::-1])
        with torch.no_grad():  # the model on this text alone, unpadded: padding must not change a score
            alone = model(input_ids=torch.tensor([text_ids]), attention_mask=torch.ones(1, len(text_ids),
                                                                                        dtype=torch.long))
        scores = alone.softmax(-1)[0].tolist()
        assert {p["label"]: p["score"] for p in result} == pytest.approx(dict(zip(LABELS, scores)), abs=1e-5)
    if layout == "transformers":  # and the scores are those transformers' own model gives on these tokens
        import transformers

        reference = transformers.BertForSequenceClassification.from_pretrained(folder).eval()
        for text_ids, result in zip(expected_ids, results):
            with torch.no_grad():
                probabilities = reference(input_ids=torch.tensor([text_ids])).logits.softmax(-1)[0].tolist()
            assert {p["label"]: p["score"] for p in result} == pytest.approx(dict(zip(LABELS, probabilities)),
                                                                             abs=1e-5)


@pytest.mark.parametrize("layout", ["zoo", "transformers"])
def test_lower_casing_and_truncation_at_max_length(tmp_path, layout):
    folder = zoo_folder(tmp_path) if layout == "zoo" else transformers_folder(tmp_path)
    classify = zoo.pipeline(f"local-dir:{folder}", top_k=1)
    calls = recorded_inputs(classify.model)
    max_length = zoo.card_of(classify.model).input.max_length
    assert max_length == 512

    shouting, quiet = classify(["THE FILM WAS GREAT!", "the film was great!"])
    assert calls[0]["input_ids"][0].tolist() == calls[0]["input_ids"][1].tolist()
    assert shouting == quiet

    long_text = " ".join(["the film was very great"] * 150)  # 750 words
    (result,) = classify([long_text])
    ids = calls[-1]["input_ids"][0].tolist()
    assert len(ids) == max_length and calls[-1]["attention_mask"].all()
    assert ids == reference_ids(folder, [long_text], max_length)[0]
    assert ids[0] == VOCAB["[CLS]"] and ids[-1] == VOCAB["[SEP]"]  # cut, then closed with [SEP]
    assert ids[1:6] == [VOCAB[w] for w in ("the", "film", "was", "very", "great")]
    assert result[0]["label"] in LABELS and 0.5 <= result[0]["score"] <= 1


def test_a_checkpoint_with_fewer_positions_truncates_at_its_own_length(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=48, num_labels=2,
                                     max_position_embeddings=64)
    folder = tmp_path / "short"
    transformers.BertForSequenceClassification(config).eval().save_pretrained(folder)
    write_tokenizer(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 64, "do_lower_case": True}))
    classify = zoo.pipeline(f"local-dir:{folder}", top_k=1)
    calls = recorded_inputs(classify.model)
    (result,) = classify([" ".join(["the film was great"] * 40)])
    assert calls[0]["input_ids"].shape == (1, 64) and calls[0]["input_ids"][0, -1] == VOCAB["[SEP]"]
    assert result[0]["label"] in {"0", "1", "LABEL_0", "LABEL_1"}
