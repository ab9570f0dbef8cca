"""A classifier built on a checkpoint without a trained head, through the transformers family: every parameter
transformers initialises anew (a RoBERTa-style classifier's dense layer, not only its output layer) is under the
card's head, so it trains wherever the head trains; a checkpoint with a trained head keeps its output layer as
the head and its outputs equal to transformers'."""
from __future__ import annotations

import copy

import pytest
import torch
from torch.utils.data import TensorDataset
from transformers_helpers import family_fixture, random_model, save, text_batch, transformers

import zoo
import zoo.finetune as ft
from zoo.finetune import fit
from zoo.registry import reset_default_registry

__all__ = ["family_fixture"]

SHAPE = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 37}
BASES = {  # a base checkpoint of each kind: its config and the transformers class it is saved from
    "electra": (lambda **kw: transformers.ElectraConfig(**SHAPE, embedding_size=32, max_position_embeddings=64, **kw),
                "AutoModelForPreTraining"),
    "roberta-prelayernorm": (lambda **kw: transformers.RobertaPreLayerNormConfig(
        **SHAPE, max_position_embeddings=66, pad_token_id=1, **kw), "AutoModelForMaskedLM"),
    "deberta-v2": (lambda **kw: transformers.DebertaV2Config(**SHAPE, max_position_embeddings=64, **kw),
                   "AutoModelForMaskedLM"),
}
KINDS = list(BASES)
QUIET = {"progress": False, "verbose": False, "precision": "fp32", "seed": 0}


def base_folder(kind, directory, **config_options):
    config, auto = BASES[kind]
    return save(random_model(auto, config(**config_options)), directory)


def newly_initialised(folder, num_labels):
    """What transformers itself reports as missing from the checkpoint (and so initialised anew)."""
    _, info = transformers.AutoModelForSequenceClassification.from_pretrained(folder, num_labels=num_labels,
                                                                            output_loading_info=True)
    return set(info["missing_keys"])


@pytest.mark.parametrize("kind", KINDS)
def test_every_fresh_parameter_trains_under_freeze(family, tmp_path, kind):
    folder = base_folder(kind, tmp_path / "base")
    fresh = newly_initialised(folder, 3)
    assert len(fresh) > 2  # more than the output layer
    model = family.create(f"local-dir:{folder}", task="text-classification", num_classes=3, freeze="backbone")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == fresh
    assert model(**text_batch()).shape == (2, 3)


def test_the_output_layer_alone_is_replaced(family, tmp_path):
    model = family.create(f"local-dir:{base_folder('electra', tmp_path / 'base')}", task="text-classification",
                          num_classes=5)
    card = model.zoo_card
    assert card.head == "classifier" and card.layer_groups[-1] == "classifier"
    assert model.classifier.out_proj.out_features == 5 and model.classifier.dense.out_features == 32


@pytest.mark.parametrize("kind", ["electra", "roberta-prelayernorm", "deberta-v2"])
def test_a_trained_classifier_keeps_its_head_and_outputs(family, tmp_path, kind):
    config, _ = BASES[kind]
    theirs = random_model("AutoModelForSequenceClassification", config(num_labels=3))
    folder = save(theirs, tmp_path / "trained")
    ours = family.create(f"local-dir:{folder}").eval()
    assert ours.zoo_card.head in ("classifier.out_proj", "classifier")
    assert isinstance(ours.get_submodule(ours.zoo_card.head), torch.nn.Linear)
    with torch.no_grad():
        torch.testing.assert_close(ours(**text_batch()), theirs(**text_batch()).logits, atol=1e-5, rtol=0)


def test_the_feature_cache_is_taken_before_the_fresh_dense_layer(family, tmp_path):
    """strategy='freeze' records what the head reads (the encoder's states); the dense layer trains on them,
    as it does without the cache."""
    folder = base_folder("electra", tmp_path / "base", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    start = family.create(f"local-dir:{folder}", task="text-classification", num_classes=2)
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randint(5, 99, (8, 7), generator=gen), torch.ones(8, 7, dtype=torch.long),
                         torch.randint(0, 2, (8,), generator=gen))
    runs = {}
    for run, cached in (("miss", None), ("hit", None), ("live", False)):
        model = copy.deepcopy(start)
        fit(model, data, epochs=2, batch_size=4, lr=0.5, optimizer="sgd", strategy="freeze", feature_cache=cached,
            feature_cache_dir=tmp_path / "features", **QUIET)
        runs[run] = {k: v.clone() for k, v in model.classifier.state_dict().items()}
    assert len(list((tmp_path / "features").rglob("*.safetensors"))) == 1
    assert not torch.equal(runs["miss"]["dense.weight"], start.classifier.dense.weight)
    for key, value in runs["miss"].items():
        assert torch.equal(runs["hit"][key], value)
        torch.testing.assert_close(runs["live"][key], value, atol=1e-5, rtol=0)


def test_no_classes_on_a_base_checkpoint_gives_the_first_tokens_state(family, tmp_path):
    folder = base_folder("electra", tmp_path / "base")
    model = family.create(f"local-dir:{folder}", task="text-classification", num_classes=0).eval()
    with torch.no_grad():
        assert torch.equal(model(**text_batch()), model.forward_features(**text_batch())[:, 0])


# ---------------------------------------------------------------------------- a fresh layer beside the head


def test_a_fresh_pooler_beside_the_classifier_is_its_companion(family, tmp_path):
    """A base DeBERTa checkpoint: the new pooler is no layer group of its own, it is in the head's."""
    model = family.create(f"local-dir:{base_folder('deberta-v2', tmp_path / 'base')}", task="text-classification",
                          num_classes=3)
    card = model.zoo_card
    assert card.head == "classifier" and card.extra["head_companions"] == ["pooler"]
    assert "pooler" not in card.layer_groups and card.layer_groups[-1] == "classifier"
    assert model.classifier.out_features == 3
    groups = ft.param_groups(model, 1.0, layer_decay=0.5)
    head_group = next(g for g in groups if g["group"] == "classifier")
    assert head_group["lr"] == 1.0 and {id(model.pooler.dense.weight), id(model.classifier.weight)} <= \
        {id(p) for p in head_group["params"]}


def test_a_base_deberta_in_a_pickled_file_finds_its_fresh_pooler_without_the_safetensors_header(family, tmp_path):
    """microsoft/deberta-v3-base ships only pytorch_model.bin: what is fresh is then what lies outside the encoder."""
    from safetensors.torch import load_file

    folder = base_folder("deberta-v2", tmp_path / "base")
    fresh = newly_initialised(folder, 3)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    model = family.create(f"local-dir:{folder}", task="text-classification", num_classes=3, freeze="backbone")
    assert model.zoo_card.extra["head_companions"] == ["pooler"]
    assert {n for n, p in model.named_parameters() if p.requires_grad} == fresh


def test_a_trained_deberta_classifier_has_no_companions(family, tmp_path):
    config, _ = BASES["deberta-v2"]
    folder = save(random_model("AutoModelForSequenceClassification", config(num_labels=3)), tmp_path / "trained")
    card = family.create(f"local-dir:{folder}", num_classes=5).zoo_card
    assert card.head == "classifier" and "head_companions" not in card.extra


def test_lora_on_a_base_deberta_trains_the_pooler_and_the_fine_tune_loads_in_transformers(family, tmp_path):
    folder = base_folder("deberta-v2", tmp_path / "base", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = family.create(f"local-dir:{folder}", task="text-classification", num_classes=3)
    ft.apply_lora(model, rank=4)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"pooler.dense.weight", "pooler.dense.bias", "classifier.weight", "classifier.bias"} <= trainable
    assert all("lora" in n or n.startswith(("pooler.", "classifier.")) for n in trainable)
    before = model.pooler.dense.weight.detach().clone()
    optimizer = torch.optim.AdamW(ft.param_groups(model, 1e-2, layer_decay=0.5))
    model.train()
    for _ in range(2):
        loss = torch.nn.functional.cross_entropy(model(**text_batch()), torch.tensor([0, 2]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert not torch.equal(model.pooler.dense.weight, before)
    model.eval()
    out = zoo.save_pretrained(ft.merge_lora(model), tmp_path / "saved")
    with torch.no_grad():
        expected = model(**text_batch())
        theirs = transformers.AutoModelForSequenceClassification.from_pretrained(out).eval()
        torch.testing.assert_close(theirs(**text_batch()).logits, expected, atol=1e-5, rtol=0)
        again = family.create(f"local-dir:{out}").eval()
        assert again.zoo_card.extra["head_companions"] == ["pooler"]  # zoo's folder keeps the card it saved
        torch.testing.assert_close(again(**text_batch()), expected, atol=1e-5, rtol=0)


def test_no_classes_on_a_base_deberta_gives_the_first_tokens_state_not_a_fresh_poolers(family, tmp_path):
    model = family.create(f"local-dir:{base_folder('deberta-v2', tmp_path / 'base')}", task="text-classification",
                          num_classes=0).eval()
    with torch.no_grad():
        assert torch.equal(model(**text_batch()), model.forward_features(**text_batch())[:, 0])
    assert model.zoo_card.num_features == 32


AUDIO = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
         "conv_dim": [16] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 2,
         "classifier_proj_size": 24}


@pytest.mark.parametrize(("kind", "auto"), [("wav2vec2", "AutoModel"), ("wav2vec2", "AutoModelForPreTraining"),
                                           ("data2vec-audio", "AutoModel")])
def test_a_base_speech_encoder_as_an_audio_classifier_trains_its_projector_with_the_head(family, monkeypatch,
                                                                                        tmp_path, kind, auto):
    if kind == "wav2vec2":  # the native speech family is the default for wav2vec2: this family's path here
        monkeypatch.setenv("ZOO_PLUGINS_BLOCK", "speech")
        reset_default_registry()
    config = transformers.AutoConfig.for_model(kind, **AUDIO)
    folder = save(random_model(auto, config), tmp_path / "base",
                  **{"preprocessor_config.json": transformers.Wav2Vec2FeatureExtractor().to_json_string()})
    _, info = transformers.AutoModelForAudioClassification.from_pretrained(folder, num_labels=4,
                                                                           output_loading_info=True)
    model = family.create(f"local-dir:{folder}", task="audio-classification", num_classes=4, freeze="backbone")
    card = model.zoo_card
    assert card.family == "transformers" and card.head == "classifier"
    assert card.extra["head_companions"] == ["projector"] and "projector" not in card.layer_groups
    assert {n for n, p in model.named_parameters() if p.requires_grad} == set(info["missing_keys"]) == \
        {"projector.weight", "projector.bias", "classifier.weight", "classifier.bias"}
    waves = torch.randn(2, 1600, generator=torch.Generator().manual_seed(0))
    assert model.eval()(waves).shape == (2, 4)
