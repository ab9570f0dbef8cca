"""Helpers for the text tests: tiny transformers models, a WordPiece vocabulary, a local Hub cache."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

TINY = {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "intermediate_size": 48}

WORDS = ("the a an is was be to of and in on at it this that with for not no yes good bad great awful movie "
         "film plot actor music love hate boring fun sad happy day night city river tree house car dog cat "
         "run running ran play played playing un ##able ##s ##ed ##ing ##ly ##er café naïve über straße "
         "hello world token ##ization zoo model").split()


def write_vocab(path: Path, *, cased: bool = False) -> list[str]:
    """A small BERT vocabulary: specials, words, letters, ##letters, digits, punctuation, a few CJK chars."""
    letters = "abcdefghijklmnopqrstuvwxyzéèàüöäñç"
    if cased:
        letters += "ABCDEFGHIJKLMNOPQRSTUVWXYZÉ"
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens += list(dict.fromkeys(list(WORDS) + (["Hello", "World", "The"] if cased else [])))
    tokens += [c for c in letters if c not in tokens] + [f"##{c}" for c in letters]
    tokens += list("0123456789") + list(".,!?;:'\"()-") + ["日", "本", "中", "文"]
    tokens = list(dict.fromkeys(tokens))
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return tokens


def tiny_hf_model(arch: str, kind: str, vocab_size: int = 120, num_labels: int = 3, **overrides):
    """A random transformers model of `arch` ("bert", "distilbert", "roberta").

    kind is Model, ForSequenceClassification..."""
    import torch
    import transformers

    torch.manual_seed(0)
    if arch == "distilbert":
        config = transformers.DistilBertConfig(**{"vocab_size": vocab_size, "dim": 32, "n_layers": 2, "n_heads": 4,
                                                  "hidden_dim": 48, "num_labels": num_labels, **overrides})
    elif arch == "roberta":
        config = transformers.RobertaConfig(**{
            "vocab_size": vocab_size, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 48, "max_position_embeddings": 66, "type_vocab_size": 1, "pad_token_id": 1,
            "layer_norm_eps": 1e-5, "num_labels": num_labels, **overrides})
    else:
        config = transformers.BertConfig(**{
            "vocab_size": vocab_size, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "intermediate_size": 48, "num_labels": num_labels, **overrides})
    prefix = {"bert": "Bert", "distilbert": "DistilBert", "roberta": "Roberta"}[arch]
    model = getattr(transformers, prefix + kind)(config).eval()
    with torch.no_grad():  # non-trivial LayerNorm and bias values, so a mix-up cannot hide
        for name, param in model.named_parameters():
            if name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name:
                param.add_(torch.randn_like(param) * 0.1)
    return model


def fake_hub_repo(cache: Path, repo_id: str, source_dir: Path, revision: str = "0" * 40) -> Path:
    """Lay out `source_dir`'s files as the Hugging Face cache holds a downloaded repo."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True, exist_ok=True)
    for item in source_dir.iterdir():
        if item.is_file():
            shutil.copyfile(item, snapshot / item.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return snapshot


def padded_batch(vocab_size: int, pad_id: int, lengths=(9, 6, 3), low: int = 5):
    """input_ids/attention_mask with rows of the given real lengths, right-padded with `pad_id`."""
    import torch

    gen = torch.Generator().manual_seed(1)
    width = max(lengths)
    ids = torch.randint(low, vocab_size, (len(lengths), width), generator=gen)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    return ids.masked_fill(mask == 0, pad_id), mask


def reference_bert_tokenizer(folder: Path, *, lowercase: bool):
    """transformers' BERT tokenizer for a vocabulary written into `folder` (vocab.txt + tokenizer_config.json)."""
    import json

    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    write_vocab(folder / "vocab.txt", cased=not lowercase)
    (folder / "tokenizer_config.json").write_text(json.dumps({"do_lower_case": lowercase}))
    return transformers.BertTokenizerFast.from_pretrained(str(folder))


@pytest.fixture
def single_thread():
    """Tiny models run fastest on one thread, above all on a shared, busy machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
