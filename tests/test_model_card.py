"""A saved model's README.md is a Hub model card about the saved model: base model, task, labels, dataset names
(never local paths), the saved epoch's metrics as model-index, and the starting weights' licence."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from weights_models import fill_hf_cache, install, isolate_caches, net_card, save_net

import zoo
from zoo.finetune.checkpoint import save_model
from zoo.weights.model_card import dataset_name


@pytest.fixture
def hub_weights(monkeypatch, tmp_path):
    """`tnet` whose weights (licence `licence`) are the Hub repo acme/tnet-base, in the local Hugging Face cache."""
    caches = isolate_caches(monkeypatch, tmp_path)

    def install_with(licence: str) -> None:
        local = tmp_path / "net.safetensors"
        save_net(local)
        fill_hf_cache(caches["hf"], "acme/tnet-base", {"model.safetensors": local.read_bytes()})
        install(monkeypatch, net_card(weights={"base": zoo.WeightsCard(source="hf-hub:acme/tnet-base", license=licence,
                                                                       num_classes=10)}, default="base"))

    return install_with


def _card(directory: Path) -> tuple[ModelCard, str]:
    text = (directory / "README.md").read_text()
    return ModelCard.load(directory / "README.md"), text


def test_readme_names_base_model_dataset_metrics_labels_and_licence(hub_weights, tmp_path):
    hub_weights("apache-2.0")
    model = zoo.create("tnet", pretrained=True, num_classes=3)
    data_folder = tmp_path / "private" / "flowers"
    data_folder.mkdir(parents=True)
    out = zoo.save_pretrained(model, tmp_path / "out", labels=["daisy", "rose", "tulip"], datasets=str(data_folder),
                              metrics={"accuracy": 0.844, "loss": 0.41, "confusion": [[1, 0], [0, 1]]})
    card, text = _card(out)
    meta = card.data
    assert (meta.library_name, meta.pipeline_tag, meta.license) == ("zoo", "image-classification", "apache-2.0")
    assert meta.base_model == "acme/tnet-base" and meta.datasets == ["flowers"]
    results = {(r.metric_type, r.metric_value, r.dataset_name, r.dataset_split, r.task_type) for r in meta.eval_results}
    assert results == {("accuracy", 0.844, "flowers", "validation", "image-classification"),
                       ("loss", 0.41, "flowers", "validation", "image-classification")}
    assert "daisy, rose, tulip" in text and str(tmp_path) not in text  # no local path, of the data or anything else


def test_non_commercial_licence_is_inherited_with_a_warning(hub_weights, tmp_path):
    hub_weights("CC-BY-NC-4.0")
    model = zoo.create("tnet", pretrained=True, num_classes=3)
    with pytest.warns(UserWarning, match="does not allow commercial use"):
        out = zoo.save_pretrained(model, tmp_path / "out")
    card, text = _card(out)
    assert card.data.license == "cc-by-nc-4.0" and "Non-commercial use only" in text


def test_weights_from_a_local_file_give_no_base_model_and_no_path(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path)
    local = tmp_path / "secret" / "net.safetensors"
    save_net(local)
    install(monkeypatch, net_card(weights={"w": zoo.WeightsCard(source=str(local), license="mit")}, default="w"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an MIT licence is no reason to warn
        out = zoo.save_pretrained(zoo.create("tnet", pretrained=True), tmp_path / "out")
    card, text = _card(out)
    assert card.data.base_model is None and card.data.license == "mit" and "secret" not in text


def test_trainer_summary_puts_the_saved_epochs_validation_metrics_in_the_card(hub_weights, tmp_path):
    hub_weights("apache-2.0")
    model = zoo.create("tnet", pretrained=True, num_classes=2)
    summary = {"epoch": 2, "metrics": {"epoch": 2, "train_loss": 0.2, "val_loss": 0.3, "val_accuracy": 0.9},
               "dataset": tmp_path / "data" / "cats_vs_dogs"}
    save_model(model, tmp_path / "best", labels=["cat", "dog"], extra=summary)
    meta, _ = _card(tmp_path / "best")
    assert meta.data.datasets == ["cats_vs_dogs"]
    assert {(r.metric_type, r.metric_value) for r in meta.data.eval_results} == {("accuracy", 0.9), ("loss", 0.3)}


def test_a_hub_checkpoint_is_the_base_model_and_lends_its_readme_licence(monkeypatch, tmp_path):
    pytest.importorskip("transformers")
    from test_text_support import tiny_hf_model

    caches = isolate_caches(monkeypatch, tmp_path)
    folder = tmp_path / "ckpt"
    tiny_hf_model("bert", "ForSequenceClassification").save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: cc-by-nc-sa-4.0\n---\n# A sentiment model\n")
    fill_hf_cache(caches["hf"], "acme/bert-sentiment", {p.name: p.read_bytes() for p in folder.iterdir()})
    model = zoo.create("hf-hub:acme/bert-sentiment@main")
    with pytest.warns(UserWarning, match="cc-by-nc-sa-4.0"):
        out = zoo.save_pretrained(model, tmp_path / "out", datasets="stanfordnlp/imdb")
    meta = _card(out)[0].data
    assert (meta.base_model, meta.license, meta.pipeline_tag) == ("acme/bert-sentiment", "cc-by-nc-sa-4.0",
                                                                  "text-classification")
    assert meta.datasets == ["stanfordnlp/imdb"]
    again = zoo.create(f"local-dir:{out}")  # saved again from a local copy: the Hub ancestor is kept
    assert zoo.card_of(again).extra["base_model"] == "acme/bert-sentiment"
    assert json.loads((out / "config.json").read_text())["card"]["extra"]["base_model"] == "acme/bert-sentiment"
    with torch.no_grad():
        ids = torch.tensor([[2, 7, 9, 3]])
        assert torch.allclose(model.eval()(ids), again.eval()(ids), atol=1e-6)


@pytest.mark.parametrize(("given", "named"), [("imdb", "imdb"), ("stanfordnlp/imdb", "stanfordnlp/imdb"),
                                              ("/data/private/flowers", "flowers"), ("~/reviews", "reviews")])
def test_dataset_names_never_carry_a_local_path(given, named):
    assert dataset_name(given) == named


def test_a_data_file_is_named_without_its_suffix(tmp_path, monkeypatch):
    (tmp_path / "reviews.csv").write_text("text,label\n")
    monkeypatch.chdir(tmp_path)
    assert dataset_name("reviews.csv") == "reviews" and dataset_name(".") == tmp_path.name


def test_zoo_finetune_writes_the_data_folder_and_the_saved_epochs_metrics_into_the_card(tmp_path, capsys):
    import trainer_models as tm

    from zoo.cli import main

    with tm.trainer_cards_on_one_thread():
        train = tm.write_image_folder(tmp_path / "shapes-train", per_class=4)
        val = tm.write_image_folder(tmp_path / "shapes-val", per_class=2, seed=1)
        out = tmp_path / "model"
        assert main(["finetune", "trainer_conv", "--data", str(train), "--val", str(val), "--epochs", "2",
                     "--batch-size", "4", "--strategy", "no_freeze", "--out", str(out), "--quiet"]) == 0
    data = ModelCard.load(out / "README.md").data.to_dict()
    assert data["datasets"] == ["shapes-train"] and str(tmp_path) not in (out / "README.md").read_text()
    saved = json.loads((out / "training.json").read_text())
    results = {m["type"]: m["value"] for m in data["model-index"][0]["results"][0]["metrics"]}
    assert results["accuracy"] == pytest.approx(saved["metrics"]["val_accuracy"])
