"""Slow sweep: ``zoo.pipeline(model)`` over the catalogue, on inputs made from each card's input spec.

The catalogue's cards with an input spec and a classification or feature-extraction task are swept one
per (modality, family, task): the smallest card of each by the default weights' parameter count (then by
the builder's width times depth, then by name), built with ``pretrained=False``. Building every card
instead (ViT-H/14, RegNet-Y 128GF, BERT large and the rest) takes well over five minutes on a small CPU,
so the sweep is this sample; each family's builder, card input spec and pipeline path are all covered.
Recipes are left out (they are fine-tunes of the cards swept here). The example plugin's cards run too.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

import zoo
from zoo.cards import AudioInput, ImageInput, ModelCard, TextInput
from zoo.data.text import attach_tokenizer, tokenizer_for, train_tokenizer
from zoo.testing import example_input

pytestmark = pytest.mark.slow

CLASSES = 3  # a new head of this size on every classifier, so every result is the whole distribution
TEXTS = ["the film was good", "a dull plot and bad actors", "great music", "the dog ran in the city at night"]
TOKEN_KEYS = {"entity", "score", "index", "word", "start", "end"}


def _size(card: ModelCard) -> tuple[float, int, str]:
    weights = card.weights.get(card.default_weights) if card.default_weights else None
    params = weights.num_params if weights is not None and weights.num_params else math.inf
    width = card.defaults.get("hidden_size", card.defaults.get("encoder_embed_dim", 0))
    depth = card.defaults.get("num_layers", card.defaults.get("encoder_num_layers", 0))
    return params, int(width or 0) * int(depth or 0), card.name


def _runs_in_a_pipeline(card: ModelCard) -> bool:
    return (card.recipe is None and card.input is not None and card.input.kind == card.modality
            and (card.task.endswith("classification") or card.task == "feature-extraction"))


def sample() -> list[str]:
    """The smallest card of each (modality, family, task) that a pipeline runs."""
    groups: dict[tuple[str, str, str], list[ModelCard]] = {}
    for name in zoo.list_models():
        card = zoo.get_card(name)
        if _runs_in_a_pipeline(card):
            groups.setdefault((card.modality, card.family or card.name, card.task), []).append(card)
    return sorted(min(cards, key=_size).name for cards in groups.values())


def inputs_for(card: ModelCard) -> list:
    """Two inputs of the kinds a person has, shaped by the card's input spec (`zoo.testing.example_input`)."""
    spec = card.input
    if isinstance(spec, ImageInput):
        images = example_input(card, batch=2).sigmoid()  # [2, 3, size, size] in (0, 1), as an image tensor is
        as_pil = Image.fromarray((images[1].permute(1, 2, 0).numpy() * 255).astype("uint8"))
        return [images[0], as_pil]
    if isinstance(spec, AudioInput):
        waves = example_input(card, batch=2) * 0.1  # [2, samples] at the card's rate, one second or its clip
        return [waves[0].numpy(), {"raw": waves[1, : waves.shape[1] // 2].numpy(), "sampling_rate": spec.sample_rate}]
    if isinstance(spec, TextInput):
        return TEXTS[:2]
    raise AssertionError(f"{card.name}: no inputs for {spec!r}")


def build(card: ModelCard) -> torch.nn.Module:
    """The card's model, random, with a new head of `CLASSES` on classifiers and a tokenizer for text models."""
    classifier = card.head is not None and card.task.endswith("classification")
    torch.manual_seed(0)
    model = zoo.create(card.name, pretrained=False, num_classes=CLASSES if classifier else None).eval()
    if card.modality == "text":  # the card's own tokenizer would be downloaded: train a small one on the texts
        vocab = int(card.defaults.get("vocab_size", 200))
        attach_tokenizer(model, train_tokenizer(TEXTS, vocab_size=min(vocab, 200), max_length=card.input.max_length))
    return model


def check_results(card: ModelCard, model: torch.nn.Module, given: list, results: list) -> None:
    assert isinstance(results, list) and len(results) == len(given), card.name
    if card.task == "feature-extraction":
        for array in results:
            assert isinstance(array, np.ndarray) and array.ndim in (1, 2) and np.isfinite(array).all(), card.name
            if card.num_features:
                assert array.shape[-1] == card.num_features, (card.name, array.shape)
        return
    if card.task == "token-classification":
        for text, entities in zip(given, results):
            tokens = tokenizer_for(model).tokenizer.encode(text)
            assert len(entities) == sum(1 for special in tokens.special_tokens_mask if not special), card.name
            for entity in entities:
                assert set(entity) == TOKEN_KEYS and 0 <= entity["score"] <= 1
                assert text[entity["start"]:entity["end"]].lower() == entity["word"].removeprefix("##")
        return
    for predictions in results:
        assert [set(p) for p in predictions] == [{"label", "score"}] * CLASSES, card.name
        scores = [p["score"] for p in predictions]
        assert scores == sorted(scores, reverse=True) and sum(scores) == pytest.approx(1.0, abs=1e-4), card.name
        labels = [p["label"] for p in predictions]
        assert all(isinstance(label, str) for label in labels) and len(set(labels)) == CLASSES, card.name


@pytest.mark.parametrize("name", sample())
def test_the_pipeline_runs_each_family_on_inputs_made_from_its_card(name):
    card = zoo.get_card(name)
    model = build(card)
    run = zoo.pipeline(model, batch_size=2, top_k=CLASSES)
    given = inputs_for(card)
    kwargs = {"sampling_rate": card.input.sample_rate} if isinstance(card.input, AudioInput) else {}
    with torch.no_grad():
        results = run(given, **kwargs)
        check_results(card, model, given, results)
        one = run(given[0], **kwargs)  # one input: one result, the same as in the batch
    if card.task == "feature-extraction":
        np.testing.assert_allclose(one, results[0], rtol=1e-4, atol=1e-4)
    elif card.task != "token-classification":
        assert [p["label"] for p in one] == [p["label"] for p in results[0]]


def test_the_example_plugins_models_run_through_the_pipeline(acme):
    names = [n for n in zoo.list_models() if n.startswith("acme_") and _runs_in_a_pipeline(zoo.get_card(n))]
    assert names
    for name in names:
        card = zoo.get_card(name)
        model = build(card)
        given = inputs_for(card)
        kwargs = {"sampling_rate": card.input.sample_rate} if isinstance(card.input, AudioInput) else {}
        check_results(card, model, given, zoo.pipeline(model, top_k=CLASSES)(given, **kwargs))
