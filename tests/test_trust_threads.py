"""Thread safety: meta-device builds stay in their thread, plugins load once, registering from
threads keeps every card, and cards handed out cannot be changed under later lookups."""
from __future__ import annotations

import copy
import json
import pickle
import threading
import time

import pytest
import torch
from weights_models import Net, install, isolate_caches, net_card, save_net

import zoo

SLOW_COUNTING_PLUGIN = """
import time
import zoo
CALLS = []
def register(registry):
    CALLS.append(1)
    time.sleep(0.2)  # a plugin that takes a moment, so every thread asks while it loads
    registry.register(zoo.ModelCard(name="count_net", builder="x:y", task="image-classification",
                                    modality="image"))
"""


def run_threads(count: int, target, timeout: float = 20.0) -> list[BaseException]:
    """Start `count` threads at once on target(index); returns what they raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout)
            target(index)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    return errors


@pytest.fixture
def slow_counting_plugin(site, monkeypatch):
    site("count-zoo", {"count": "count_plugin:register"}, {"count_plugin/__init__.py": SLOW_COUNTING_PLUGIN})
    monkeypatch.setenv("ZOO_PLUGINS_AUTOLOAD", "0")
    monkeypatch.setenv("ZOO_PLUGINS_ALLOW", "count")


# ---------------------------------------------------------------------------- building on meta


def test_pretrained_create_in_one_thread_never_puts_another_threads_parameters_on_meta(tmp_path, monkeypatch):
    isolate_caches(monkeypatch, tmp_path)
    path = tmp_path / "net.safetensors"
    save_net(path)
    install(monkeypatch, net_card(weights={"w": zoo.WeightsCard(source=str(path), num_classes=10)}, default="w"))
    deadline = time.monotonic() + 2.0
    stop = threading.Event()  # set as soon as a meta parameter shows up where it must not
    created, built, meta_seen = [], [], []

    def create_pretrained() -> None:
        while time.monotonic() < deadline and not stop.is_set():
            model = zoo.create("tnet", pretrained=True)  # built on meta, then loaded
            assert not any(p.is_meta for p in model.parameters())
            created.append(1)

    def build_plain() -> None:
        while time.monotonic() < deadline and not stop.is_set():
            net = Net(8, 10)
            built.append(1)
            if any(p.is_meta for p in net.parameters()):
                meta_seen.append(1)
                stop.set()

    assert run_threads(2, lambda i: create_pretrained() if i == 0 else build_plain()) == []
    assert created and built
    assert meta_seen == [], "a module built in another thread got meta parameters"


# ---------------------------------------------------------------------------- loading plugins


def test_sixteen_threads_asking_at_once_load_plugins_once(slow_counting_plugin):
    results: list[list[str]] = []
    assert run_threads(16, lambda i: results.append(zoo.list_models())) == []
    import count_plugin

    assert count_plugin.CALLS == [1]
    assert results == [["count_net"]] * 16


def test_cards_registered_from_threads_at_first_use_are_all_kept(slow_counting_plugin):
    def register(index: int) -> None:
        zoo.default_registry().register(zoo.ModelCard(
            name=f"thread_net_{index}", builder="x:y", task="image-classification", modality="image"))

    assert run_threads(8, register) == []
    assert zoo.list_models("thread_net_*") == [f"thread_net_{i}" for i in range(8)]


# ---------------------------------------------------------------------------- read-only cards


def test_cards_from_get_card_cannot_change_what_later_creates_build(monkeypatch):
    weights = zoo.WeightsCard(source="w.safetensors", num_classes=2, labels=["cat", "dog"], metrics={"acc@1": 0.9})
    recipe = zoo.Recipe(name="tnet_ft", model="tnet", options={"freeze": ["stem"]}, required=("num_classes",))
    install(monkeypatch,
            net_card(weights={"w": weights}, default="w", extra={"labels": ["a", "b"], "nested": {"k": [1]}}),
            recipe)
    card = zoo.get_card("tnet")
    attempts = [
        lambda: card.defaults.__setitem__("num_classes", 3),
        lambda: card.defaults.update(width=2),
        lambda: card.weights.__setitem__("x", weights),
        lambda: card.weights.pop("w"),
        lambda: card.extra["labels"].append("c"),
        lambda: card.extra["nested"]["k"].append(2),
        lambda: card.weights["w"].metrics.__setitem__("acc@1", 1.0),
        lambda: zoo.get_card("tnet_ft").recipe.options.__setitem__("freeze", None),
    ]
    for attempt in attempts:
        with pytest.raises(zoo.CardError, match="read-only"):
            attempt()
    again = zoo.get_card("tnet")
    assert again.defaults == {"width": 8, "num_classes": 10} and again.extra["labels"] == ["a", "b"]
    assert dict(zoo.get_card("tnet_ft").recipe.options) == {"freeze": ["stem"]}
    assert zoo.create("tnet").classifier.out_features == 10
    assert zoo.create("tnet", num_classes=3).classifier.out_features == 3  # a changed copy, not the shared card

    # frozen cards still serialise: plain JSON, deep copies and pickles of models that carry them
    data = card.to_dict()
    assert type(data["defaults"]) is dict and type(data["extra"]["nested"]["k"]) is list
    assert zoo.ModelCard.from_dict(json.loads(json.dumps(data))) == card
    model = zoo.create("tnet")
    assert zoo.card_of(copy.deepcopy(model)) == zoo.card_of(model)
    assert pickle.loads(pickle.dumps(card)) == card
    assert isinstance(copy.deepcopy(model).classifier.weight, torch.nn.Parameter)
