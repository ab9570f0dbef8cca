"""A new head on a base DistilBERT or RoBERTa checkpoint is transformers' head: a fresh dense layer before the
output layer, built into zoo's head so it trains wherever the head trains, and a fine-tune loads in
``AutoModelForSequenceClassification``. Folders saved before, and ``pooler_dense=False``, keep their layout.
"""
from __future__ import annotations

import copy
import json

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.usefixtures("single_thread")

from test_text_support import fake_hub_repo, padded_batch, single_thread, tiny_hf_model  # noqa: E402, F401
from torch.utils.data import TensorDataset  # noqa: E402

import zoo  # noqa: E402
from zoo.finetune import fit, param_groups  # noqa: E402
from zoo.finetune.lora import apply_lora  # noqa: E402

TINY = {"vocab_size": 120, "hidden_size": 32, "num_heads": 4, "intermediate_size": 48}
CARDS = {  # card: (its depth, which the card's layer groups name; pad id; transformers' name of the dense layer)
    "distilbert_base_uncased": (6, 0, "pre_classifier"),
    "roberta_base": (12, 1, "classifier.dense"),
}
QUIET = {"progress": False, "verbose": False, "precision": "fp32", "seed": 0}


def tiny(name, **options):
    depth, _, _ = CARDS[name]
    return zoo.create(name, **{**TINY, "num_layers": depth, **options})


def labelled(pad, n=12):
    gen = torch.Generator().manual_seed(3)
    ids, mask = padded_batch(120, pad, lengths=tuple(3 + i % 7 for i in range(n)))
    return TensorDataset(ids, mask, torch.randint(0, 2, (n,), generator=gen))


def dense_state(model):
    return {k: v.detach().clone() for k, v in model.head.dense.state_dict().items()}


@pytest.mark.parametrize("name", list(CARDS))
def test_a_new_head_on_a_base_checkpoint_has_a_fresh_dense_layer_in_the_head(name):
    model = tiny(name, num_classes=3)
    assert model.pooler.dense is None
    assert [n for n, _ in model.head.named_children()][:1] == ["dense"] and model.head.out.out_features == 3
    assert zoo.card_of(model).defaults["pooler_in_head"] is True  # saved configs say what the model was built with
    features = tiny(name)  # no classes: the first token's state, no random projection
    assert isinstance(features.head, torch.nn.Identity)
    ids, mask = padded_batch(120, CARDS[name][1])
    with torch.no_grad():
        assert torch.equal(features.eval()(ids, mask), features.forward_features(ids, mask)[:, 0])


def test_checkpoints_that_hold_the_dense_layer_keep_it_in_the_pooler():
    bert = zoo.create("bert_base_uncased", num_classes=3, **TINY, num_layers=12)
    sst2 = zoo.create("distilbert_base_uncased_sst2", **TINY, num_layers=6)
    for model in (bert, sst2):
        assert model.pooler.dense is not None and isinstance(model.head, torch.nn.Linear)


@pytest.mark.parametrize("name", list(CARDS))
def test_the_fresh_dense_layer_trains_with_a_frozen_backbone(name, tmp_path):
    """freeze='backbone' (the *_ft recipes freeze part of the encoder; the default strategy keeps it): the dense
    layer trains and the backbone does not."""
    model = tiny(name, num_classes=2, freeze="backbone")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.dense.weight", "head.dense.bias", "head.out.weight", "head.out.bias"}
    backbone = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    dense = dense_state(model)
    fit(model, labelled(CARDS[name][1]), epochs=1, batch_size=12, lr=1e-2, **QUIET)
    assert all(not torch.equal(dense[k], v) for k, v in model.head.dense.state_dict().items())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in backbone.items())


@pytest.mark.parametrize("name", list(CARDS))
def test_the_feature_cache_is_taken_before_the_fresh_dense_layer(name, tmp_path):
    """strategy='freeze' caches what the head reads; the dense layer trains on it, as without the cache."""
    start = tiny(name, num_classes=2, drop_rate=0.0, attention_dropout=0.0, classifier_dropout=0.0, pooler_dropout=0.0)
    data = labelled(CARDS[name][1])
    runs = {}
    for run, cached in (("miss", None), ("hit", None), ("live", False)):
        model = copy.deepcopy(start)
        fit(model, data, epochs=2, batch_size=6, lr=0.5, optimizer="sgd", strategy="freeze", feature_cache=cached,
            feature_cache_dir=tmp_path / "features", **QUIET)
        runs[run] = model.head.state_dict()
    assert len(list((tmp_path / "features").glob("*.safetensors"))) == 1
    assert not torch.equal(runs["miss"]["dense.weight"], start.head.dense.weight)
    for key, value in runs["miss"].items():
        assert torch.equal(runs["hit"][key], value)
        assert torch.allclose(runs["live"][key], value, atol=1e-5)


def test_lora_and_layer_decay_treat_the_dense_layer_as_the_head():
    model = tiny("distilbert_base_uncased", num_classes=3)
    rates = {g["group"]: g["lr"] for g in param_groups(model, 1e-3, layer_decay=0.5)}
    heads = [g for g in param_groups(model, 1e-3, layer_decay=0.5) if g["group"] == "head"]
    assert any(p is model.head.dense.weight for g in heads for p in g["params"]) and rates["head"] == 1e-3
    adapted = apply_lora(model)
    assert not any(name.startswith("head") for name in adapted)
    assert model.head.dense.weight.requires_grad and model.head.out.weight.requires_grad


@pytest.mark.parametrize("name", list(CARDS))
def test_a_fine_tuned_default_classifier_loads_in_transformers(name, tmp_path):
    depth, pad, hf_name = CARDS[name]
    model = tiny(name, num_classes=3)
    fit(model, labelled(pad), epochs=1, batch_size=12, lr=1e-2, strategy="no_freeze", **QUIET)  # one step
    model.eval()
    zoo.save_pretrained(model, tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert "interchange_note" not in config and config["architectures"][0].endswith("ForSequenceClassification")
    loaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved").eval()
    weight = loaded.get_submodule(hf_name).weight
    assert torch.equal(weight, model.head.dense.weight)  # the fine-tuned layer, not a fresh one
    ids, mask = padded_batch(120, pad)
    with torch.no_grad():
        expected = model(ids, mask)
        assert (loaded(input_ids=ids, attention_mask=mask).logits - expected).abs().max().item() <= 1e-5
        again = zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()
        assert torch.equal(again(ids, mask), expected)
    assert again.head.dense is not None


def _saved_the_old_way(model, directory, **defaults):
    """`model` saved, with its config's builder arguments as zoo wrote them before `pooler_in_head` existed."""
    zoo.save_pretrained(model, directory)
    path = directory / "config.json"
    config = json.loads(path.read_text())
    saved = config["card"]["defaults"]
    saved.pop("pooler_in_head")
    saved.update(defaults)
    saved = {k: v for k, v in saved.items() if v is not None}
    config["card"]["defaults"] = saved
    path.write_text(json.dumps(config))
    return config


@pytest.mark.parametrize("pooler_dense", [False, None])  # the old default, and a config without the key
def test_a_folder_saved_without_a_dense_layer_loads_as_it_was(tmp_path, pooler_dense):
    model = tiny("distilbert_base_uncased", num_classes=3, pooler_dense=False).eval()
    config = _saved_the_old_way(model, tmp_path / "saved", pooler_dense=pooler_dense)
    assert "dense layer" in config["interchange_note"]
    again = zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()
    assert isinstance(again.head, torch.nn.Linear) and again.pooler.dense is None
    ids, mask = padded_batch(120, 0)
    with torch.no_grad():
        assert torch.equal(again(ids, mask), model(ids, mask))


def test_a_folder_saved_with_the_dense_layer_in_the_pooler_loads_as_it_was(tmp_path):
    """Before, ``pooler_dense=True`` put the layer in the pooler (and the folder in transformers' names)."""
    model = tiny("roberta_base", num_classes=3, pooler_dense=True, pooler_in_head=False).eval()
    config = _saved_the_old_way(model, tmp_path / "saved")
    assert config["architectures"] == ["RobertaForSequenceClassification"]
    again = zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()
    assert again.pooler.dense is not None and isinstance(again.head, torch.nn.Linear)
    ids, mask = padded_batch(120, 1)
    with torch.no_grad():
        assert torch.equal(again(ids, mask), model(ids, mask))


def test_a_plain_head_added_later_keeps_zoo_names_and_says_why(tmp_path):
    """A model built without classes, then given a head by reset_head, has no dense layer: no transformers class."""
    model = tiny("roberta_base")
    zoo.finetune.reset_head(model, 3)
    zoo.save_pretrained(model.eval(), tmp_path / "saved")
    config = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert "architectures" not in config and "dense layer" in config["interchange_note"]
    ids, mask = padded_batch(120, 1)
    with torch.no_grad():
        assert torch.equal(zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()(ids, mask), model(ids, mask))


def test_the_distilbert_ft_recipe_gets_the_dense_head(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tiny_hf_model("distilbert", "Model", n_layers=6).save_pretrained(tmp_path / "base")
    fake_hub_repo(cache, "distilbert/distilbert-base-uncased", tmp_path / "base")
    model = zoo.create("distilbert_ft", pretrained=True, num_classes=2, **TINY, num_layers=6)
    assert model.head.dense.weight.requires_grad
    dense = dense_state(model)
    fit(model, labelled(0), epochs=1, batch_size=12, lr=1e-2, **QUIET)
    assert all(not torch.equal(dense[k], v) for k, v in model.head.dense.state_dict().items())


BASE_FOLDERS = {  # checkpoints without a trained classifier: (transformers class suffix, pad id, its dense layer)
    "distilbert": ("Model", 0, "pre_classifier"),
    "roberta": ("Model", 1, "classifier.dense"),
    "bert": ("ForMaskedLM", 0, "bert.pooler.dense"),  # saved without BERT's pooler
}


def base_folder(arch, directory, **overrides):
    kind, _, _ = BASE_FOLDERS[arch]
    tiny_hf_model(arch, kind, **overrides).save_pretrained(directory)
    return directory


@pytest.mark.parametrize("arch", list(BASE_FOLDERS))
def test_a_base_checkpoint_folder_gets_the_fresh_dense_layer_in_the_head(arch, tmp_path):
    folder = base_folder(arch, tmp_path / "base")
    model = zoo.create(f"local-dir:{folder}", task="text-classification", num_classes=3, freeze="backbone")
    assert model.pooler.dense is None and model.head.out.out_features == 3
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"head.dense.weight", "head.dense.bias", "head.out.weight", "head.out.bias"}
    assert zoo.card_of(model).defaults["pooler_in_head"] is True
    features = zoo.create(f"local-dir:{folder}", task="text-classification", num_classes=0).eval()
    ids, mask = padded_batch(120, BASE_FOLDERS[arch][1])
    with torch.no_grad():  # no classes: the first token's state, which the fresh dense layer reads
        assert torch.equal(features(ids, mask), features.forward_features(ids, mask)[:, 0])


@pytest.mark.parametrize("arch", ["distilbert", "roberta"])
def test_a_fine_tune_of_a_base_checkpoint_folder_loads_in_transformers(arch, tmp_path):
    _, pad, hf_name = BASE_FOLDERS[arch]
    model = zoo.create(f"local-dir:{base_folder(arch, tmp_path / 'base')}", task="text-classification",
                       num_classes=3)
    dense = dense_state(model)
    fit(model, labelled(pad), epochs=1, batch_size=12, lr=1e-2, strategy="no_freeze", **QUIET)  # one step
    assert all(not torch.equal(dense[k], v) for k, v in model.head.dense.state_dict().items())
    zoo.save_pretrained(model.eval(), tmp_path / "saved")
    loaded = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "saved").eval()
    assert torch.equal(loaded.get_submodule(hf_name).weight, model.head.dense.weight)
    ids, mask = padded_batch(120, pad)
    with torch.no_grad():
        expected = model(ids, mask)
        assert expected.shape == (3, 3)
        assert (loaded(input_ids=ids, attention_mask=mask).logits - expected).abs().max().item() <= 1e-5
        assert torch.equal(zoo.create(f"local-dir:{tmp_path / 'saved'}").eval()(ids, mask), expected)


def test_the_generic_cards_build_a_fresh_head_with_its_dense_layer():
    for name in ("distilbert_classifier", "roberta_classifier"):
        model = zoo.create(name, num_classes=2, **TINY, num_layers=2)
        assert model.pooler.dense is None and model.head.out.out_features == 2
    bert = zoo.create("bert_classifier", num_classes=2, **TINY, num_layers=2)
    assert bert.pooler.dense is not None and isinstance(bert.head, torch.nn.Linear)
