"""save_pretrained / create("local-dir:...") / create("hf-hub:...") / push_to_hub, and transformers checkpoints."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from weights_models import MODULE, TiedLM, fill_hf_cache, install, isolate_caches, net_card, save_net

import zoo


@pytest.fixture
def caches(monkeypatch, tmp_path):
    return isolate_caches(monkeypatch, tmp_path)


@pytest.fixture
def pretrained(caches, tmp_path, monkeypatch):
    path = tmp_path / "w" / "net.safetensors"
    net, _ = save_net(path)
    labels = [f"class{i}" for i in range(10)]
    install(monkeypatch, net_card(weights={"w": zoo.WeightsCard(source=str(path), num_classes=10, labels=labels,
                                                                license="mit", metrics={"top1": 0.5})},
                                  default="w", description="A test net"))
    return net


def _same_outputs(a, b):
    x = torch.randn(3, 3, 32, 32)
    a.eval(), b.eval()
    with torch.no_grad():
        assert torch.equal(a(x), b(x))


def _tuned(num_classes=4):
    model = zoo.create("tnet", pretrained=True, num_classes=num_classes)
    with torch.no_grad():  # "training" changed every weight
        for p in model.parameters():
            p.mul_(1.5)
    return model


def test_save_then_local_dir_rebuilds_identical_model(pretrained, tmp_path):
    model = _tuned(4)
    out = zoo.save_pretrained(model, tmp_path / "saved", labels=["a", "b", "c", "d"])
    assert sorted(p.name for p in Path(out).iterdir()) == ["README.md", "config.json", "model.safetensors"]
    config = json.loads((out / "config.json").read_text())
    assert config["num_classes"] == 4 and config["labels"] == ["a", "b", "c", "d"]
    assert zoo.ModelCard.from_dict(config["card"]).builder == f"{MODULE}:build_net"
    assert "weights_location" not in config["card"].get("extra", {})
    from huggingface_hub import ModelCard

    meta = ModelCard.load(out / "README.md").data
    assert (meta.library_name, meta.pipeline_tag, meta.license) == ("zoo", "image-classification", "mit")
    again = zoo.create(f"local-dir:{out}")
    _same_outputs(model, again)
    assert again.zoo_card.num_classes == 4 and again.zoo_card.extra["labels"] == ["a", "b", "c", "d"]
    assert again.zoo_card.extra["weights_location"] == str(out)
    assert not any(p.is_meta for p in again.parameters())


def test_local_dir_with_new_head_and_freeze(pretrained, tmp_path):
    model = _tuned(4)
    zoo.save_pretrained(model, tmp_path / "saved")
    again = zoo.create(f"local-dir:{tmp_path / 'saved'}", num_classes=2, freeze="backbone")
    assert again.classifier.out_features == 2
    assert torch.equal(again.stem[0].weight, model.stem[0].weight)
    assert not again.stem[0].weight.requires_grad and again.classifier.weight.requires_grad


def test_features_only_model_round_trips(pretrained, tmp_path):
    model = zoo.create("tnet", pretrained=True, num_classes=0)
    zoo.save_pretrained(model, tmp_path / "features")
    again = zoo.create(f"local-dir:{tmp_path / 'features'}")
    assert isinstance(again.classifier, torch.nn.Identity)
    _same_outputs(model, again)


def test_pretrained_false_builds_the_architecture_only(pretrained, tmp_path):
    model = _tuned(4)
    zoo.save_pretrained(model, tmp_path / "saved")
    fresh = zoo.create(f"local-dir:{tmp_path / 'saved'}", pretrained=False)
    assert fresh.classifier.out_features == 4
    assert not torch.equal(fresh.stem[0].weight, model.stem[0].weight)


def test_saving_twice_replaces_files_whole(pretrained, tmp_path):
    model = _tuned(4)
    zoo.save_pretrained(model, tmp_path / "saved")
    loaded = zoo.create(f"local-dir:{tmp_path / 'saved'}")  # memory-maps the file it will overwrite
    with torch.no_grad():
        loaded.classifier.bias.add_(1)
    zoo.save_pretrained(loaded, tmp_path / "saved")
    _same_outputs(loaded, zoo.create(f"local-dir:{tmp_path / 'saved'}"))
    assert not [p for p in (tmp_path / "saved").iterdir() if p.name.startswith(".")]


def test_saved_files_get_the_usual_permissions(pretrained, tmp_path):
    """Files are written through private temporaries; the saved ones must be readable as usual."""
    import os

    mask = os.umask(0o022)
    try:
        zoo.save_pretrained(_tuned(4), tmp_path / "saved")
    finally:
        os.umask(mask)
    for name in ("config.json", "model.safetensors", "README.md"):
        assert (tmp_path / "saved" / name).stat().st_mode & 0o777 == 0o644, name


def test_hf_hub_round_trip_through_local_cache(pretrained, tmp_path, caches):
    model = _tuned(4)
    out = zoo.save_pretrained(model, tmp_path / "saved")
    fill_hf_cache(caches["hf"], "me/tnet-ft", {p.name: p.read_bytes() for p in out.iterdir()})
    again = zoo.create("hf-hub:me/tnet-ft")
    _same_outputs(model, again)
    fill_hf_cache(caches["hf"], "me/tnet-ft", {p.name: p.read_bytes() for p in out.iterdir()},
                  revision="v1", commit="f" * 40)
    _same_outputs(model, zoo.create("hf-hub:me/tnet-ft@v1"))
    with pytest.raises(zoo.WeightsError, match="HF_HUB_OFFLINE"):
        zoo.create("hf-hub:me/not-there")


def test_push_to_hub_uploads_the_saved_files(pretrained, monkeypatch):
    import huggingface_hub

    model = _tuned(4)
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create"] = (repo_id, kwargs.get("private"))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        folder = Path(folder_path)
        calls["files"] = {p.name: p.read_bytes() for p in folder.iterdir()}
        calls["repo"] = repo_id
        return "commit-info"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", upload_folder)
    assert zoo.push_to_hub(model, "me/tnet-ft", private=True, token="hf_x") == "commit-info"
    assert calls["create"] == ("me/tnet-ft", True) and calls["repo"] == "me/tnet-ft"
    assert sorted(calls["files"]) == ["README.md", "config.json", "model.safetensors"]
    assert 'zoo.create("hf-hub:me/tnet-ft")' in calls["files"]["README.md"].decode()
    assert json.loads(calls["files"]["config.json"])["num_classes"] == 4


def test_lora_is_merged_on_save_without_changing_the_model(pretrained, tmp_path):
    lora = pytest.importorskip("zoo.finetune.lora")
    model = zoo.create("tnet", pretrained=True, num_classes=4)
    model.stage.add_module("mix", torch.nn.Linear(16, 16))  # a Linear to adapt (conv nets have few)
    model.stage.mix = lora.LoRALinear(model.stage.mix, rank=2)
    with torch.no_grad():
        model.stage.mix.lora_b.normal_()
    from zoo.weights.saving import plain_state_dict

    state = plain_state_dict(model)
    assert "stage.mix.weight" in state and not any("lora" in k or ".base." in k for k in state)
    assert isinstance(model.stage.mix, lora.LoRALinear)  # the model itself is untouched
    merged = model.stage.mix.merged()
    assert torch.allclose(state["stage.mix.weight"], merged.weight)


# ---------------------------------------------------------------------------- transformers checkpoints


def _tiny_lm_cards():
    common = dict(builder=f"{MODULE}:build_tied", modality="text", head="classifier",
                  extra={"hf_model_types": ["tiny-lm"], "hf_config_to_kwargs": f"{MODULE}:hf_config_to_kwargs",
                         "hf_key_map": f"{MODULE}:hf_key_map"})
    return [zoo.ModelCard(name="tiny_cls", task="text-classification", **common),
            zoo.ModelCard(name="tiny_lm", task="feature-extraction", **common)]


def _write_transformers_dir(directory: Path, lm: TiedLM, *, pickle: bool = False, **config) -> Path:
    directory.mkdir(parents=True)
    state = {"model.embeddings.weight": lm.embed.weight, "model.dense.weight": lm.proj.weight,
             "model.dense.bias": lm.proj.bias, "model.pooler.weight": torch.zeros(2)}
    if pickle:
        torch.save(state, directory / "pytorch_model.bin")
    else:
        save_file({k: v.detach().contiguous() for k, v in state.items()}, str(directory / "model.safetensors"))
    (directory / "config.json").write_text(json.dumps({"model_type": "tiny-lm", "vocab_size": 20, "hidden_size": 8,
                                                       **config}))
    (directory / "tokenizer.json").write_text("{}")
    return directory


@pytest.mark.parametrize("pickle", [False, True])
def test_transformers_checkpoint_builds_the_declared_family(caches, tmp_path, monkeypatch, pickle):
    install(monkeypatch, *_tiny_lm_cards())
    torch.manual_seed(0)
    lm = TiedLM()
    directory = _write_transformers_dir(tmp_path / "bert-like", lm, pickle=pickle)
    model = zoo.create(f"local-dir:{directory}")
    assert model.zoo_card.name == "tiny_lm"  # feature extraction is preferred
    assert torch.equal(model.embed.weight, lm.embed.weight) and torch.equal(model.proj.bias, lm.proj.bias)
    assert model.decoder.weight is model.embed.weight
    assert model.zoo_card.extra["weights_location"] == str(directory)


def test_transformers_checkpoint_for_a_task_with_labels(caches, tmp_path, monkeypatch):
    install(monkeypatch, *_tiny_lm_cards())
    lm = TiedLM()
    directory = _write_transformers_dir(tmp_path / "cls", lm, num_labels=2, id2label={"0": "neg", "1": "pos"})
    fill_hf_cache(caches["hf"], "org/tiny", {p.name: p.read_bytes() for p in directory.iterdir()})
    model = zoo.create("hf-hub:org/tiny", task="text-classification")
    assert model.zoo_card.name == "tiny_cls" and model.classifier.out_features == 2
    assert model.zoo_card.extra["labels"] == ["neg", "pos"]
    assert (Path(model.zoo_card.extra["weights_location"]) / "tokenizer.json").exists()
    assert torch.equal(model.proj.weight, lm.proj.weight)
    # saved again in zoo's format, the side files travel along
    out = zoo.save_pretrained(model, tmp_path / "resaved")
    assert (out / "tokenizer.json").exists()
    _ids = torch.randint(0, 20, (2, 4))
    again = zoo.create(f"local-dir:{out}")
    model.eval(), again.eval()
    assert torch.equal(model(_ids)[0], again(_ids)[0])


def test_transformers_checkpoint_without_a_family_is_a_clear_error(caches, tmp_path, monkeypatch):
    install(monkeypatch, net_card())
    directory = _write_transformers_dir(tmp_path / "x", TiedLM())
    with pytest.raises(zoo.WeightsError, match="hf_model_types"):
        zoo.create(f"local-dir:{directory}")
    with pytest.raises(zoo.WeightsError, match="no such directory"):
        zoo.create(f"local-dir:{tmp_path / 'nope'}")
