"""Text encoders load transformers checkpoints strictly and compute what transformers computes."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("single_thread")
transformers = pytest.importorskip("transformers")

from test_text_support import TINY, fake_hub_repo, padded_batch, reference_bert_tokenizer, single_thread, tiny_hf_model  # noqa: E402, F401

import zoo  # noqa: E402
from zoo.data import text as text_data  # noqa: E402
from zoo_text.hf_checkpoints import convert_state_dict  # noqa: E402

TOL = 1e-5
KINDS = {"feature-extraction": "Model", "text-classification": "ForSequenceClassification",
         "token-classification": "ForTokenClassification"}


def _pad_id(arch):
    return 1 if arch == "roberta" else 0


def _compare(ours, theirs, mask=None):
    if mask is not None and ours.dim() == 3:  # hidden states: positions of real tokens
        ours, theirs = ours[mask.bool()], theirs[mask.bool()]
    assert ours.shape == theirs.shape
    assert (ours - theirs).abs().max().item() <= TOL


@pytest.mark.parametrize("arch", ["bert", "distilbert", "roberta"])
@pytest.mark.parametrize("task", list(KINDS))
def test_transformers_checkpoint_through_local_dir(tmp_path, arch, task):
    hf = tiny_hf_model(arch, KINDS[task])
    hf.save_pretrained(tmp_path / "ckpt")
    model = zoo.create(f"local-dir:{tmp_path / 'ckpt'}", task=task).eval()
    card = zoo.card_of(model)
    assert card.task == task and card.extra["architecture"] == arch
    assert card.extra["weights_location"] == str(tmp_path / "ckpt")
    ids, mask = padded_batch(120, _pad_id(arch))
    for attention in (None, mask):
        batch_ids = ids if attention is not None else ids[:, :3]  # unpadded: every row full length
        with torch.no_grad():
            ref = hf(input_ids=batch_ids, attention_mask=attention, output_hidden_states=True)
            hidden = model.forward_features(batch_ids, attention)
            out = model(batch_ids, attention)
        _compare(hidden, ref.hidden_states[-1], attention)
        if task == "feature-extraction":
            weights = (attention if attention is not None else torch.ones_like(batch_ids)).unsqueeze(-1).float()
            expected = (ref.hidden_states[-1] * weights).sum(1) / weights.sum(1)
            _compare(out, expected)
        else:
            _compare(out, ref.logits, attention)


def test_pooler_output_matches_bert_model(tmp_path):
    hf = tiny_hf_model("bert", "Model")
    hf.save_pretrained(tmp_path / "ckpt")
    model = zoo.create(f"local-dir:{tmp_path / 'ckpt'}", task="text-classification").eval()
    ids, mask = padded_batch(120, 0)
    with torch.no_grad():
        _compare(model(ids, mask), hf(input_ids=ids, attention_mask=mask).pooler_output)


def test_pytorch_bin_checkpoint_loads(tmp_path):
    hf = tiny_hf_model("distilbert", "ForSequenceClassification")
    hf.save_pretrained(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "model.safetensors").unlink()  # as older repos hold it: a pickled state dict only
    torch.save(hf.state_dict(), tmp_path / "ckpt" / "pytorch_model.bin")
    model = zoo.create(f"local-dir:{tmp_path / 'ckpt'}", task="text-classification").eval()
    ids, mask = padded_batch(120, 0)
    with torch.no_grad():
        _compare(model(ids, mask), hf(input_ids=ids, attention_mask=mask).logits)


def test_key_map_handles_original_bert_files_and_drops_pretraining_heads():
    hf = tiny_hf_model("bert", "ForPreTraining")
    state = {}
    for key, tensor in hf.state_dict().items():  # the TF-converted files name LayerNorm gamma/beta
        key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        state[key] = tensor
    state["bert.embeddings.position_ids"] = torch.arange(512)[None]
    from zoo_text.transformer import build_text_transformer

    model = build_text_transformer(vocab_size=120, **TINY, pooler_dense=True)
    model.load_state_dict(convert_state_dict(state, "bert", "text-classification"), strict=True)
    with pytest.raises(RuntimeError, match="Unexpected"):  # anything unknown still fails strict loading
        model.load_state_dict(convert_state_dict({**state, "bert.extra.weight": torch.zeros(1)}, "bert",
                                                 "text-classification"), strict=True)


def test_incomplete_attention_is_reported():
    state = {"bert.encoder.layer.0.attention.self.query.weight": torch.zeros(4, 4)}
    with pytest.raises(zoo.WeightsError, match="key, value"):
        convert_state_dict(state, "bert", "feature-extraction")


# ---------------------------------------------------------------------------- cards' own Hub weights


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def _publish(tmp_path, cache, repo_id, hf, *, lowercase=True):
    """Save a transformers model and its tokenizer as the Hub repo `repo_id` in the local cache."""
    folder = tmp_path / repo_id.replace("/", "_")
    hf.save_pretrained(folder)
    reference = reference_bert_tokenizer(tmp_path / "tokenizer", lowercase=lowercase)
    reference.save_pretrained(folder)
    fake_hub_repo(cache, repo_id, folder)
    return reference


def test_card_weights_from_the_hub_cache(tmp_path, hub_cache):
    hf = tiny_hf_model("bert", "ForPreTraining", vocab_size=200, num_hidden_layers=12)  # the card's depth
    reference = _publish(tmp_path, hub_cache, "google-bert/bert-base-uncased", hf)
    shape = {**TINY, "num_layers": 12}
    model = zoo.create("bert_base_uncased", pretrained=True, vocab_size=200, **shape).eval()
    assert zoo.card_of(model).num_classes == 0  # pooled features until a head is asked for
    texts = ["Hello world!", "the movie was great", ""]
    tokens = reference(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = hf.bert(**tokens).pooler_output
    got = text_data.infer(model, texts)
    _compare(got, expected)

    with_head = zoo.create("bert_base_uncased", pretrained=True, num_classes=3, vocab_size=200, **shape)
    assert zoo.card_of(with_head).num_classes == 3
    assert with_head(**text_data.tokenizer_for(with_head)(texts)).shape == (3, 3)


def test_finetuned_classifier_card_keeps_its_head(tmp_path, hub_cache):
    hf = tiny_hf_model("distilbert", "ForSequenceClassification", vocab_size=200, num_labels=2, n_layers=6)
    _publish(tmp_path, hub_cache, "distilbert/distilbert-base-uncased-finetuned-sst-2-english", hf)
    shape = {**TINY, "num_layers": 6}  # the card's depth
    model = zoo.create("distilbert_base_uncased_sst2", pretrained=True, vocab_size=200, **shape).eval()
    ids, mask = padded_batch(200, 0)
    with torch.no_grad():
        _compare(model(ids, mask), hf(input_ids=ids, attention_mask=mask).logits)
    assert zoo.get_card("distilbert_base_uncased_sst2").weights["hf"].labels == ("NEGATIVE", "POSITIVE")


def test_sentence_embedding_card_and_minilm_recipe(tmp_path, hub_cache):
    hf = tiny_hf_model("bert", "Model", vocab_size=200, num_hidden_layers=6)  # the card's depth
    _publish(tmp_path, hub_cache, "sentence-transformers/all-MiniLM-L6-v2", hf)
    shape = {**TINY, "num_layers": 6}
    model = zoo.create("all_minilm_l6_v2", pretrained=True, vocab_size=200, **shape).eval()
    texts = ["a good movie", "the dog ran in the city at night", "café"]
    embeddings = text_data.infer(model, texts)
    tokens = text_data.tokenizer_for(model)(texts)
    with torch.no_grad():
        hidden = hf(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]).last_hidden_state
    weights = tokens["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)
    _compare(embeddings, expected)
    assert torch.allclose(embeddings.norm(dim=-1), torch.ones(3), atol=1e-5)

    recipe = zoo.create("minilm_ft", num_classes=4, vocab_size=200, **shape)
    card = zoo.card_of(recipe)
    assert card.num_classes == 4 and card.defaults["normalize"] is False
    frozen = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("layers.") else "")
              for n, p in recipe.named_parameters() if not p.requires_grad}
    assert frozen == {"embeddings", "layers.0", "layers.1", "layers.2"}  # the lower half of the encoder
    assert recipe.head.weight.requires_grad
    with pytest.raises(zoo.InvalidArgumentError, match="num_classes"):
        zoo.create("minilm_ft")


def test_unsupported_checkpoint_variant_is_refused_clearly(tmp_path):
    hf = tiny_hf_model("bert", "Model", position_embedding_type="relative_key")
    hf.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(zoo.WeightsError, match="relative_key"):
        zoo.create(f"local-dir:{tmp_path / 'ckpt'}")


def test_transformers_repo_from_the_hub_cache_keeps_labels_and_tokenizer(tmp_path, hub_cache):
    labels = {0: "O", 1: "B-PER", 2: "I-PER"}
    hf = tiny_hf_model("bert", "ForTokenClassification", vocab_size=200, id2label=labels,
                       label2id={v: k for k, v in labels.items()})
    _publish(tmp_path, hub_cache, "someone/tiny-ner", hf, lowercase=False)
    model = zoo.create("hf-hub:someone/tiny-ner", task="token-classification").eval()
    assert zoo.card_of(model).extra["labels"] == ["O", "B-PER", "I-PER"]
    per_text = text_data.infer(model, ["Hello World", "the dog"])
    tokens = text_data.tokenizer_for(model)(["Hello World"])
    with torch.no_grad():
        expected = hf(**tokens).logits[0]
    _compare(per_text[0], expected)
