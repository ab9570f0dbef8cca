"""Text -> model inputs: the tokenizer a model was trained with, batch encoding, small trained tokenizers.

A text model's tokenizer is found through its card, so a user goes from strings to logits
or embeddings without writing preprocessing::

    model = zoo.create("all_minilm_l6_v2", pretrained=True)
    embeddings = zoo.data.text.infer(model, ["a sentence", "another one"])

    tokenizer = zoo.data.text.tokenizer_for(model)
    batch = tokenizer(["a sentence", "another one"])      # input_ids, attention_mask, token_type_ids
    outputs = model(**batch)

Where the tokenizer comes from, first match wins: one attached to the model
(`attach_tokenizer`); one stored in the card (``extra["tokenizer"]``, how a trained tokenizer
travels with `zoo.save_pretrained`); ``tokenizer.json`` or ``vocab.txt`` beside the weights
(``extra["weights_location"]``); the card's ``input.tokenizer`` (a path or ``hf-hub:org/repo``).
Everything is built with the `tokenizers` library; `torch` and `tokenizers` are imported
only when used.
"""
from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError, WeightsError, ZooError
from ..files import write_text_atomic
from ..names import HUB_PREFIX

if TYPE_CHECKING:
    import tokenizers
    import torch

    from ..cards import ModelCard

TOKENIZER_FILE = "tokenizer.json"
VOCAB_FILE = "vocab.txt"
TOKENIZER_ATTRIBUTE = "zoo_tokenizer"
_PAD_TOKENS = ("[PAD]", "<pad>", "<PAD>")
_HUB = HUB_PREFIX


class TextTokenizer:
    """A `tokenizers.Tokenizer` plus what batching needs: the pad token and the maximum length.

    Calling it (or `encode_batch`) turns strings into padded, truncated tensors.
    """

    def __init__(self, tokenizer: tokenizers.Tokenizer, *, max_length: int | None = 512,
                 pad_token: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_token, self.pad_token_id = _pad_token(tokenizer, pad_token)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def encode_batch(self, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
                     max_length: int | None = None, pad_to: int | None = None) -> dict[str, torch.Tensor]:
        """``{"input_ids", "attention_mask", "token_type_ids"}`` as ``[batch, length]`` int64 tensors.

        Sequences are truncated to `max_length` (default: the model's) and padded to the
        longest in the batch, or to `pad_to`.
        """
        texts = _as_texts(texts, "texts")
        if pairs is not None:
            pairs = _as_texts(pairs, "pairs")
            if len(pairs) != len(texts):
                raise InvalidArgumentError(f"got {len(texts)} texts but {len(pairs)} pairs; give one pair per text")
        inputs = list(zip(texts, pairs)) if pairs is not None else texts
        return _tensors(self._encode(inputs, max_length=max_length, pad_to=pad_to, is_pretokenized=False))

    __call__ = encode_batch

    def encode_each(self, texts: Sequence[str], *, max_length: int | None = None
                    ) -> list[tuple[list[int], list[int]]]:
        """Each text's token ids and token type ids, truncated to `max_length` (default: the model's), unpadded."""
        tok = self._truncating(max_length)
        tok.no_padding()  # `_encode` sets padding again on every call
        return [(e.ids, e.type_ids) for e in tok.encode_batch(_as_texts(texts, "texts"))]

    def encode_words(self, sentences: Sequence[Sequence[str]], *, max_length: int | None = None
                     ) -> tuple[dict[str, torch.Tensor], list[list[int | None]]]:
        """`encode_batch` for sentences already split into words, and each token's word.

        The second result gives, for every token of every sentence, the index of the word it
        came from, or None for special tokens (``[CLS]``, ``[SEP]``) and padding.
        """
        words = [_as_texts(sentence, "each sentence's words") for sentence in sentences]
        encodings = self._encode(words, max_length=max_length, pad_to=None, is_pretokenized=True)
        return _tensors(encodings), [list(encoding.word_ids) for encoding in encodings]

    def _truncating(self, max_length: int | None) -> tokenizers.Tokenizer:
        """The tokenizer, set to truncate at `max_length` (default: the model's; none when neither says)."""
        limit = max_length or self.max_length
        tok = self.tokenizer
        if limit:
            tok.enable_truncation(max_length=limit)
        else:
            tok.no_truncation()
        return tok

    def _encode(self, inputs: list[Any], *, max_length: int | None, pad_to: int | None,
                is_pretokenized: bool) -> list[tokenizers.Encoding]:
        """The tokenizer's encodings of `inputs`, truncated to `max_length` (default: the model's) and
        padded to the longest, or to `pad_to`."""
        tok = self._truncating(max_length)
        if self.pad_token is not None:
            tok.enable_padding(pad_id=self.pad_token_id, pad_token=self.pad_token, length=pad_to)
        elif len(inputs) > 1:
            raise ZooError("this tokenizer has no padding token ([PAD] or <pad>), so texts cannot be batched; "
                           "encode one text at a time or pass pad_token= to TextTokenizer")
        return list(tok.encode_batch(inputs, is_pretokenized=is_pretokenized))

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def to_str(self) -> str:
        return self.tokenizer.to_str()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``tokenizer.json`` (to `path`, or into `path` if it is a directory), atomically."""
        path = Path(path)
        if path.is_dir():
            path = path / TOKENIZER_FILE
        write_text_atomic(path, self.to_str())
        return path

    def __repr__(self) -> str:
        return (f"TextTokenizer(vocab_size={self.vocab_size}, max_length={self.max_length}, "
                f"pad_token={self.pad_token!r})")


# ---------------------------------------------------------------------------- loading


def load_tokenizer(source: str | os.PathLike[str], *, max_length: int | None = 512, lowercase: bool = False,
                   revision: str | None = None) -> TextTokenizer:
    """A tokenizer from ``tokenizer.json``, a WordPiece ``vocab.txt``, a directory holding one, or ``hf-hub:org/repo``.

    `lowercase` applies to a bare ``vocab.txt`` only (a ``tokenizer.json`` says it itself).
    """
    text = str(source)
    if text.startswith(_HUB):
        return TextTokenizer(_from_hub(text[len(_HUB):], revision, lowercase), max_length=max_length)
    path = Path(text).expanduser()
    if path.is_dir():
        found = [path / name for name in (TOKENIZER_FILE, VOCAB_FILE) if (path / name).is_file()]
        if not found:
            raise WeightsError(f"{path} holds neither {TOKENIZER_FILE} nor {VOCAB_FILE}; put the model's "
                               "tokenizer there or pass the file itself")
        path = found[0]
    if not path.is_file():
        raise WeightsError(f"tokenizer file {path} does not exist")
    return TextTokenizer(_from_file(path, lowercase), max_length=max_length)


def _from_file(path: Path, lowercase: bool) -> tokenizers.Tokenizer:
    from tokenizers import Tokenizer

    if path.suffix == ".txt":
        return wordpiece_from_vocab(path, lowercase=lowercase)
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on malformed files
        raise WeightsError(f"{path} is not a tokenizers JSON file: {exc}") from exc


def _from_hub(spec: str, revision: str | None, lowercase: bool) -> tokenizers.Tokenizer:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    from ..weights.sources import cache_only_reason, check_hub_repo_id, hub_cache_dir, hub_endpoint

    repo, _, at = spec.partition("@")
    check_hub_repo_id(repo)
    revision = revision or at or None
    cache_only = cache_only_reason(repo, revision=revision)  # bounded: no network costs seconds, not minutes
    last: Exception | None = None
    for name in (TOKENIZER_FILE, VOCAB_FILE):
        try:
            path = hf_hub_download(repo, name, revision=revision, cache_dir=hub_cache_dir(), endpoint=hub_endpoint(),
                                   local_files_only=cache_only is not None, library_name="zoo")
            return _from_file(Path(path), lowercase)
        except (EntryNotFoundError, LocalEntryNotFoundError) as exc:
            last = exc
        except Exception as exc:  # network, authentication ...
            raise WeightsError(f"cannot fetch the tokenizer of hf-hub:{repo}: {exc}") from exc
    hint = f" ({cache_only}: download it once with a network, or point HF_HUB_CACHE at a cache that has it)" \
        if cache_only else ""
    raise WeightsError(f"hf-hub:{repo} has no {TOKENIZER_FILE} or {VOCAB_FILE} available{hint}: {last}")


def wordpiece_from_vocab(vocab: str | os.PathLike[str], *, lowercase: bool) -> tokenizers.Tokenizer:
    """BERT's tokenizer from a ``vocab.txt``: normalize, split, WordPiece, ``[CLS] ... [SEP]``."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    tokenizer = Tokenizer(WordPiece.from_file(str(vocab), unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                      strip_accents=None, lowercase=lowercase)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is not None and sep_id is not None:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS]:0 $A:0 [SEP]:0", pair="[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
    return tokenizer


# ---------------------------------------------------------------------------- from a model or card


def tokenizer_for(model_or_card: Any, *, train_texts: Iterable[str] | None = None,
                  vocab_size: int | None = None) -> TextTokenizer:
    """The tokenizer of a zoo text model (or card).

    With `train_texts`, a model that has no tokenizer yet (an RNN trained from scratch) gets
    one trained on them, sized to the model's vocabulary, and attached to the model.
    """
    from ..cards import ModelCard, TextInput

    model = None if isinstance(model_or_card, ModelCard) else model_or_card
    attached: TextTokenizer | None = None if model is None else getattr(model, TOKENIZER_ATTRIBUTE, None)
    if attached is not None:
        return attached
    card = model_or_card if model is None else _card_of(model)
    spec = card.input_for()
    if card.modality != "text" or (spec is not None and not isinstance(spec, TextInput)):
        raise InvalidArgumentError(f"model {card.name!r} is a {card.modality} model; it has no tokenizer")
    max_length = spec.max_length if spec is not None else 512
    lowercase = spec.lowercase if spec is not None else False
    tokenizer = _stored_tokenizer(card, max_length, lowercase)
    if tokenizer is None and train_texts is not None:
        size = vocab_size or int(card.defaults.get("vocab_size", 8000))
        tokenizer = train_tokenizer(train_texts, vocab_size=size, max_length=max_length)
        if model is not None:
            attach_tokenizer(model, tokenizer)
    if tokenizer is None:
        raise ZooError(f"model {card.name!r} has no tokenizer: its card names none and none was saved with its "
                       "weights. Train one on your texts: zoo.data.text.tokenizer_for(model, train_texts=texts) "
                       "(or train_tokenizer(texts) and attach_tokenizer(model, tokenizer))")
    if model is not None:
        object.__setattr__(model, TOKENIZER_ATTRIBUTE, tokenizer)
    return tokenizer


def _card_of(model: Any) -> ModelCard:
    from ..cards import card_of

    return card_of(model)


def _stored_tokenizer(card: Any, max_length: int, lowercase: bool) -> TextTokenizer | None:
    from tokenizers import Tokenizer

    inline = card.extra.get("tokenizer")
    if inline:
        return TextTokenizer(Tokenizer.from_str(inline if isinstance(inline, str) else json.dumps(inline)),
                             max_length=max_length)
    location = card.extra.get("weights_location")
    if location:
        folder = Path(location)
        folder = folder if folder.is_dir() else folder.parent
        if any((folder / name).is_file() for name in (TOKENIZER_FILE, VOCAB_FILE)):
            return load_tokenizer(folder, max_length=max_length, lowercase=lowercase)
    source = card.input.tokenizer if card.input is not None and hasattr(card.input, "tokenizer") else None
    if source:
        return load_tokenizer(source, max_length=max_length, lowercase=lowercase)
    return None


def attach_tokenizer(model: Any, tokenizer: TextTokenizer) -> None:
    """Give `model` this tokenizer, stored in its card so `zoo.save_pretrained` keeps it."""
    from ..cards import attach_card

    card = _card_of(model)
    object.__setattr__(model, TOKENIZER_ATTRIBUTE, tokenizer)
    attach_card(model, dataclasses.replace(card, extra={**card.extra, "tokenizer": tokenizer.to_str()}))


def encode_batch(tokenizer: TextTokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
                 max_length: int | None = None) -> dict[str, torch.Tensor]:
    """Padded, truncated tensors for a batch of texts (see `TextTokenizer.encode_batch`)."""
    return tokenizer.encode_batch(texts, pairs, max_length=max_length)


# ---------------------------------------------------------------------------- training


_TRAINED_SPECIALS = ["[PAD]", "[UNK]"]
_CONTINUING = "##"


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 8000, lowercase: bool = True,
                    min_frequency: int = 1, max_length: int | None = 256) -> TextTokenizer:
    """A WordPiece tokenizer trained on `texts` (for models trained from scratch).

    Token 0 is ``[PAD]`` and 1 is ``[UNK]``; no ``[CLS]``/``[SEP]`` are added. The same texts give
    the same tokenizer in every process (see `_continuing_pieces`).
    """
    from tokenizers.trainers import WordPieceTrainer

    if vocab_size < 3:
        raise InvalidArgumentError(f"vocab_size must be at least 3, got {vocab_size}")
    texts = [t for t in texts if isinstance(t, str)]
    tokenizer = _wordpiece(None, lowercase)
    trainer = WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                               special_tokens=_TRAINED_SPECIALS + _continuing_pieces(tokenizer, texts))
    tokenizer.train_from_iterator(texts, trainer=trainer)
    # the same vocabulary, with only [PAD] and [UNK] as special tokens
    trained = _wordpiece(tokenizer.get_vocab(with_added_tokens=False), lowercase)
    trained.add_special_tokens(_TRAINED_SPECIALS)
    return TextTokenizer(trained, max_length=max_length, pad_token="[PAD]")


def _wordpiece(vocab: dict[str, int] | None, lowercase: bool) -> tokenizers.Tokenizer:
    """An untrained (`vocab` None) or trained WordPiece tokenizer: BERT's normalizer and splitting."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordPiece

    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", continuing_subword_prefix=_CONTINUING))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, strip_accents=None)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece(prefix=_CONTINUING)
    return tokenizer


def _continuing_pieces(tokenizer: tokenizers.Tokenizer, texts: Sequence[str]) -> list[str]:
    """``##c`` for every character that continues a word of `texts`, sorted.

    The tokenizers trainer numbers these pieces in the order it meets them in a hash map, which
    changes from process to process, and the numbers break ties between equally frequent merges:
    the same texts gave another vocabulary in every run (huggingface/tokenizers#1794). Declared up
    front they have fixed numbers, and training repeats exactly.
    """
    assert tokenizer.normalizer is not None and tokenizer.pre_tokenizer is not None  # set by _wordpiece
    normalize, split = tokenizer.normalizer.normalize_str, tokenizer.pre_tokenizer.pre_tokenize_str
    chars = {char for text in texts for word, _ in split(normalize(text)) for char in word[1:]}
    return [_CONTINUING + char for char in sorted(chars)]


# ---------------------------------------------------------------------------- running a model on strings


DEFAULT_MAX_TOKENS = 4096
"""`infer`'s default token budget: the most (padded) tokens in one batch."""


def infer(model: Any, texts: Sequence[str], *, batch_size: int | None = None, max_length: int | None = None,
          tokenizer: TextTokenizer | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
          ) -> torch.Tensor | list[torch.Tensor]:
    """Run a text model on strings: logits ``[n, classes]`` or embeddings ``[n, features]``.

    Token classification returns one ``[tokens, classes]`` tensor per text (special tokens
    included, padding removed). All texts are tokenized once, sorted by their token count and
    cut into batches of at most `max_tokens` tokens (rows times the longest row; a longer text
    runs alone) and at most `batch_size` texts (None: no limit), so short texts go in large
    batches and little padding is computed; results come back in the input order. The model
    runs in eval mode under inference mode.
    """
    import torch

    texts = _as_texts(texts, "texts")
    if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
        raise InvalidArgumentError(f"batch_size must be None (no limit) or a whole number of 1 or more, "
                                   f"got {batch_size!r}")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidArgumentError(f"max_tokens must be a whole number of 1 or more, got {max_tokens!r}")
    tokenizer = tokenizer or tokenizer_for(model)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    results: list[Any] = [None] * len(texts)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for index, batch in budget_batches(tokenizer, texts, max_tokens=max_tokens, batch_size=batch_size,
                                               max_length=max_length):
                batch = {k: v.to(device) for k, v in batch.items()}
                out = model(**batch)
                for row, i in enumerate(index):
                    if out.dim() == 3:
                        results[i] = out[row, batch["attention_mask"][row].bool()].float().cpu()
                    else:
                        results[i] = out[row].float().cpu()
    finally:
        model.train(was_training)
    if results and results[0].dim() == 1:
        return torch.stack(results)
    return results


def budget_batches(tokenizer: TextTokenizer, texts: Sequence[str], *, max_tokens: int = DEFAULT_MAX_TOKENS,
                   batch_size: int | None = None, max_length: int | None = None,
                   ) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """`texts` tokenized once and cut as `token_budget_batches` cuts them: each batch's indices into `texts`
    (the batches of the longest texts first) and its padded tensors (``input_ids``, ``attention_mask``,
    ``token_type_ids``).

    Within a batch the rows keep the input order, so texts that fit one batch give the tensors `encode_batch`
    gives. At most `batch_size` texts a batch (None: no limit); one at a time when the tokenizer has no pad
    token. `infer` and `zoo.pipeline` run text models through this, and put the results back in input order.
    """
    encodings = tokenizer.encode_each(texts, max_length=max_length)
    most = batch_size if tokenizer.pad_token_id is not None else 1  # no pad token: one text at a time
    for index in token_budget_batches([len(e[0]) for e in encodings], max_tokens, most):
        index = sorted(index)
        yield index, _padded([encodings[i] for i in index], tokenizer.pad_token_id or 0)


def token_budget_batches(lengths: Sequence[int], max_tokens: int, max_items: int | None = None) -> list[list[int]]:
    """Indices into `lengths`, longest first, cut into batches whose padded size (rows times the longest
    row) stays within `max_tokens` and whose row count within `max_items` (None: no limit).

    A sequence longer than `max_tokens` makes a batch of its own. Sorting keeps rows of like
    length together, so padding is small; the budget lets batches of short rows hold many rows.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        full = max_items is not None and len(current) >= max_items
        if current and (full or (len(current) + 1) * longest > max_tokens):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def _padded(encodings: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """``{"input_ids", "attention_mask", "token_type_ids"}`` for token ids and type ids, padded on the right to
    the longest, as the tokenizer pads."""
    import torch

    length = max(len(ids) for ids, _ in encodings)
    ids = torch.full((len(encodings), length), pad_id, dtype=torch.long)
    types = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    for row, (token_ids, type_ids) in enumerate(encodings):
        n = len(token_ids)
        ids[row, :n] = torch.tensor(token_ids, dtype=torch.long)
        types[row, :n] = torch.tensor(type_ids, dtype=torch.long)
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


# ---------------------------------------------------------------------------- helpers


def _tensors(encodings: Sequence[tokenizers.Encoding]) -> dict[str, torch.Tensor]:
    """``{"input_ids", "attention_mask", "token_type_ids"}`` as ``[batch, length]`` int64 tensors."""
    import torch

    return {
        "input_ids": torch.tensor([e.ids for e in encodings], dtype=torch.long),
        "attention_mask": torch.tensor([e.attention_mask for e in encodings], dtype=torch.long),
        "token_type_ids": torch.tensor([e.type_ids for e in encodings], dtype=torch.long),
    }


def _as_texts(texts: Any, what: str) -> list[str]:
    if isinstance(texts, str):
        raise InvalidArgumentError(f"{what} must be a list of strings, got one string; wrap it: [{texts[:30]!r}]")
    items = list(texts)
    bad = [type(t).__name__ for t in items if not isinstance(t, str)]
    if bad:
        raise InvalidArgumentError(f"{what} must all be strings; got {', '.join(sorted(set(bad)))}")
    return items


def _pad_token(tokenizer: tokenizers.Tokenizer, pad_token: str | None) -> tuple[str | None, int | None]:
    if pad_token is None and tokenizer.padding:
        pad_token = tokenizer.padding.get("pad_token")
    candidates = [pad_token] if pad_token else list(_PAD_TOKENS)
    for token in candidates:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token, token_id
    if pad_token:
        raise InvalidArgumentError(f"pad token {pad_token!r} is not in the tokenizer's vocabulary")
    return None, None


