"""The class names `zoo predict`, `zoo evaluate` and `save_pretrained` show come from one rule: `card_labels`."""
from __future__ import annotations

import dataclasses

from zoo.cards import ModelCard, WeightsCard, card_labels

NAMES = ["cat", "dog", "fox"]


def card(**changes: object) -> ModelCard:
    base = ModelCard(name="tnet", builder="tests_pkg.models:build", task="image-classification", modality="image",
                     weights={"a": WeightsCard(source="local:/nowhere.safetensors", num_classes=3, labels=NAMES)},
                     default_weights="a")
    return dataclasses.replace(base, **changes)


def test_the_default_weights_name_the_classes_of_a_model_that_still_has_their_head():
    assert card_labels(card()) == NAMES
    assert card_labels(card(num_classes=3)) == NAMES


def test_a_new_head_drops_the_weights_class_names():
    assert card_labels(card(num_classes=5)) is None
    assert card_labels(card(num_classes=0)) is None


def test_labels_a_saved_model_recorded_win_and_a_card_without_names_gives_none():
    assert card_labels(card(num_classes=2, extra={"labels": ["yes", "no"]})) == ["yes", "no"]
    assert card_labels(card(weights={}, default_weights=None)) is None
