"""zoo's tokenization equals transformers' on varied text; trained tokenizers travel with their model."""
from __future__ import annotations

import random

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("single_thread")
transformers = pytest.importorskip("transformers")

from test_text_support import WORDS, reference_bert_tokenizer, single_thread, write_vocab  # noqa: E402, F401

import zoo  # noqa: E402
from zoo.data import text as text_data  # noqa: E402

EXTRAS = ["", " ", "   leading and trailing   ", "Café naïve Über straße", "ÉCOLE élève", "emoji 😀 🚀 ok",
          "日本 中文 mixed 日本語", "tabs\tand\nnewlines", "punctuation!!! ?? ...,;:", "un-able (can't)",
          "numbers 12345 and 3.14", "unknownzzzqqq words", "\u200b zero width \u00a0 nbsp", "ＦＵＬＬ width",
          "a" * 300, " ".join(["long"] * 200)]


def varied_texts(n: int = 300) -> list[str]:
    rng = random.Random(0)
    pool = list(WORDS) + ["Hello", "WORLD", "Zoo", "ünïcödé", "x-ray", "😀", "!", "?", "12", "naïveté", "日本"]
    texts = list(EXTRAS)
    while len(texts) < n:
        texts.append(" ".join(rng.choice(pool) for _ in range(rng.randint(0, 40))))
    return texts


def _assert_same(ours: dict, theirs: dict) -> None:
    for key in ("input_ids", "attention_mask", "token_type_ids"):
        assert torch.equal(ours[key], theirs[key]), key


@pytest.mark.parametrize("lowercase", [True, False])
def test_wordpiece_from_vocab_and_tokenizer_json_match_transformers(tmp_path, lowercase):
    reference = reference_bert_tokenizer(tmp_path / "ref", lowercase=lowercase)
    reference.save_pretrained(tmp_path / "saved")
    assert (tmp_path / "saved" / "tokenizer.json").is_file()
    from_vocab = text_data.load_tokenizer(tmp_path / "ref" / "vocab.txt", max_length=48, lowercase=lowercase)
    from_json = text_data.load_tokenizer(tmp_path / "saved", max_length=48)
    texts = varied_texts()
    for start in range(0, len(texts), 50):
        chunk = texts[start:start + 50]
        expected = reference(chunk, padding=True, truncation=True, max_length=48, return_tensors="pt")
        _assert_same(from_vocab(chunk), expected)
        _assert_same(from_json(chunk), expected)
    pairs = texts[50:80]
    expected = reference(texts[:30], pairs, padding=True, truncation=True, max_length=48, return_tensors="pt")
    _assert_same(from_json(texts[:30], pairs), expected)
    assert from_json(["a long text " * 100])["input_ids"].shape == (1, 48)


def test_byte_level_bpe_tokenizer_json_matches_transformers(tmp_path):
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(varied_texts(200), vocab_size=400,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(tmp_path))
    reference = transformers.RobertaTokenizerFast.from_pretrained(str(tmp_path))
    reference.save_pretrained(tmp_path / "saved")
    ours = text_data.load_tokenizer(tmp_path / "saved" / "tokenizer.json", max_length=40)
    assert ours.pad_token_id == 1  # RoBERTa pads with <pad>, id 1
    texts = varied_texts(120)
    expected = reference(texts, padding=True, truncation=True, max_length=40, return_tensors="pt")
    got = ours(texts)
    assert torch.equal(got["input_ids"], expected["input_ids"])
    assert torch.equal(got["attention_mask"], expected["attention_mask"])


def test_tokenizer_found_through_the_card_input(tmp_path):
    write_vocab(tmp_path / "vocab.txt")
    card = zoo.ModelCard(name="t", builder="m:f", task="feature-extraction", modality="text",
                         input=zoo.TextInput(max_length=16, tokenizer=str(tmp_path / "vocab.txt"), lowercase=True))
    tokenizer = text_data.tokenizer_for(card)
    assert tokenizer.max_length == 16
    batch = tokenizer(["Hello World", ""])
    assert batch["input_ids"][1, :2].tolist() == [2, 3]  # [CLS] [SEP] for the empty string
    assert batch["attention_mask"].tolist()[1][2:] == [0] * (batch["input_ids"].shape[1] - 2)


def test_errors_say_what_to_do(tmp_path):
    model = zoo.create("lstm_classifier")
    with pytest.raises(zoo.ZooError, match="train_texts"):
        text_data.tokenizer_for(model)
    write_vocab(tmp_path / "vocab.txt")
    tokenizer = text_data.load_tokenizer(tmp_path / "vocab.txt")
    with pytest.raises(zoo.InvalidArgumentError, match="list of strings"):
        tokenizer("just one string")
    with pytest.raises(zoo.WeightsError, match="neither"):
        text_data.load_tokenizer(tmp_path / "nothing_here" if (tmp_path / "nothing_here").mkdir() is None else "")


def test_trained_tokenizer_travels_with_the_saved_model(tmp_path):
    texts = ["the film was good", "a bad plot", "great music and actors", "boring and sad"] * 5
    model = zoo.create("bigru_classifier", num_classes=2, vocab_size=500)
    tokenizer = text_data.tokenizer_for(model, train_texts=texts)
    assert tokenizer.pad_token_id == 0 and tokenizer.vocab_size <= 500
    assert text_data.tokenizer_for(model) is tokenizer
    batch = tokenizer(["the film was good", "unseen words here"])
    assert batch["attention_mask"][0].sum() == 4  # four known words; the unseen ones split into pieces
    assert batch["input_ids"][0, 4:].eq(0).all() and tokenizer.decode(batch["input_ids"][0]) == "the film was good"
    zoo.save_pretrained(model, tmp_path / "saved")
    again = zoo.create(f"local-dir:{tmp_path / 'saved'}")
    assert torch.equal(text_data.tokenizer_for(again)(["the film was good"])["input_ids"],
                       tokenizer(["the film was good"])["input_ids"])
    model.eval(), again.eval()
    assert torch.equal(text_data.infer(model, texts[:4]), text_data.infer(again, texts[:4]))
