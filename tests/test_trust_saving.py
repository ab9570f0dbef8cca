"""A saved model is its own files only, its weights carry their sha256, and it never holds NaN or Inf.

Also: sharded checkpoints read only shards inside their folder, and pushing without a Hub is one clear error.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from weights_models import MODULE, fill_hf_cache, install, isolate_caches, net_card, save_net, sha256

import zoo
from zoo.finetune.checkpoint import save_model
from zoo.weights.formats import read_state_dict
from zoo.weights.saving import check_saved_weights, recorded_sha256

FORMAT_V1 = Path(__file__).resolve().parent / "fixtures" / "format_v1" / "model"
MODEL_FILES = ["README.md", "config.json", "model.safetensors"]


@pytest.fixture(autouse=True)
def offline_caches(monkeypatch, tmp_path):
    isolate_caches(monkeypatch, tmp_path)


@pytest.fixture
def tnet(tmp_path, monkeypatch):
    """A zoo model with pretrained weights from a local file."""
    save_net(tmp_path / "w" / "net.safetensors")
    weights = zoo.WeightsCard(source=str(tmp_path / "w" / "net.safetensors"), num_classes=10)
    install(monkeypatch, net_card(weights={"w": weights}, default="w"))
    return zoo.create("tnet", pretrained=True)


def _config(directory: Path) -> dict:
    return json.loads((directory / "config.json").read_text())


# ---------------------------------------------------------------------------- only the model's own files


def _plant_strangers(folder: Path, outside: Path) -> None:
    """Files a user keeps next to a model, and a link that leads out of the folder."""
    (folder / "secrets.txt").write_text("password=hunter2")
    (folder / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    (folder / "notes.md").write_text("my notes")
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    os.symlink(outside, folder / "vocab.txt")


def _push_files(model, monkeypatch) -> list[str]:
    import huggingface_hub

    pushed = {}
    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", lambda self, repo_id, **kwargs: None)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda self, *, folder_path, **kwargs:
                        pushed.update(files=sorted(p.name for p in Path(folder_path).iterdir())))
    zoo.push_to_hub(model, "me/text-model", token="hf_x")
    return pushed["files"]


@pytest.mark.parametrize("saver", ["save_pretrained", "save_model", "push_to_hub"])
def test_resaving_a_loaded_model_carries_its_tokenizer_but_no_stranger_files(tmp_path, monkeypatch, saver):
    card = zoo.ModelCard(name="tlm", builder=f"{MODULE}:build_tied", task="text-classification", modality="text",
                         head="classifier", input=zoo.TextInput(tokenizer="custom.tok"))
    install(monkeypatch, card)
    first = zoo.save_pretrained(zoo.create("tlm"), tmp_path / "first")
    (first / "tokenizer.json").write_text("{}")
    (first / "custom.tok").write_text("the tokenizer the card names")
    _plant_strangers(first, tmp_path / "passwd")
    model = zoo.create(f"local-dir:{first}")
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"vocab\.txt.*outside"):
        if saver == "save_pretrained":
            zoo.save_pretrained(model, out)
        elif saver == "save_model":
            save_model(model, out)
        else:
            files = _push_files(model, monkeypatch)
    if saver != "push_to_hub":
        files = sorted(p.name for p in out.iterdir())
        assert (out / "custom.tok").read_text() == "the tokenizer the card names"
    assert files == sorted(MODEL_FILES + ["custom.tok", "tokenizer.json"])


# ---------------------------------------------------------------------------- sharded checkpoints


def _shards(folder: Path) -> dict[str, str]:
    """Two safetensors shards and their weight map (tensor -> shard file name)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"a": torch.ones(2)}, str(folder / "model-00001-of-00002.safetensors"))
    save_file({"b": torch.zeros(3)}, str(folder / "model-00002-of-00002.safetensors"))
    return {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}


def _index(folder: Path, weight_map) -> Path:
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return index


@pytest.mark.parametrize("escape", ["absolute", "dotdot", "symlink"])
def test_shards_inside_the_folder_load_and_one_outside_it_is_refused(tmp_path, escape):
    folder = tmp_path / "ckpt"
    weight_map = _shards(folder)
    state = read_state_dict(_index(folder, weight_map))
    assert torch.equal(state["a"], torch.ones(2)) and torch.equal(state["b"], torch.zeros(3))
    save_file({"b": torch.zeros(3)}, str(tmp_path / "elsewhere.safetensors"))
    if escape == "absolute":
        weight_map["b"] = str(tmp_path / "elsewhere.safetensors")
    elif escape == "dotdot":
        weight_map["b"] = "../elsewhere.safetensors"
    else:
        os.symlink(tmp_path / "elsewhere.safetensors", folder / "linked.safetensors")
        weight_map["b"] = "linked.safetensors"
    with pytest.raises(zoo.WeightsError, match="refusing to read it"):
        read_state_dict(_index(folder, weight_map))


def test_hub_cache_shards_load_through_their_blob_links_but_not_past_the_repo(tmp_path):
    source = tmp_path / "source"
    weight_map = _shards(source)
    files = {p.name: p.read_bytes() for p in source.iterdir()}
    files["model.safetensors.index.json"] = json.dumps({"weight_map": weight_map}).encode()
    snapshot = fill_hf_cache(tmp_path / "hub", "org/sharded", files)
    assert sorted(read_state_dict(snapshot / "model.safetensors.index.json")) == ["a", "b"]
    other = fill_hf_cache(tmp_path / "hub", "org/other", {"x.safetensors": files[weight_map["b"]]})
    (snapshot / weight_map["b"]).unlink()
    os.symlink(other / "x.safetensors", snapshot / weight_map["b"])  # into another repo's blobs
    with pytest.raises(zoo.WeightsError, match="outside"):
        read_state_dict(snapshot / "model.safetensors.index.json")


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    ('{"metadata": {}}', "no 'weight_map'"),
    ('{"weight_map": ["model-00001-of-00002.safetensors"]}', "no 'weight_map'"),
    ('{"weight_map": {"a": 1}}', "no 'weight_map'"),
    ('{"weight_map": {"a": "model.safetensors.index.json"}}', "not a shard"),
    ('{"weight_map": {"a": "config.json"}}', "not a shard"),
    ('{"weight_map": {"a": "model-00002-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}',
     "does not hold it"),
])
def test_a_malformed_shard_index_is_a_clear_error(tmp_path, content, message):
    folder = tmp_path / "ckpt"
    _shards(folder)
    (folder / "config.json").write_text("{}")
    index = folder / "model.safetensors.index.json"
    index.write_text(content)
    with pytest.raises(zoo.WeightsError, match=message):
        read_state_dict(index)


def test_a_shard_index_that_is_a_fifo_or_huge_is_refused_without_reading_it(tmp_path):
    folder = tmp_path / "ckpt"
    folder.mkdir()
    huge = folder / "huge.safetensors.index.json"
    with open(huge, "wb") as f:
        f.truncate(1 << 28)  # sparse: costs no disk
    fifo = folder / "model.safetensors.index.json"
    os.mkfifo(fifo)
    outcome = {}

    def read_both():
        for path in (huge, fifo):
            try:
                read_state_dict(path)
            except zoo.WeightsError as exc:
                outcome[path.name] = str(exc)

    reader = threading.Thread(target=read_both, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # unblock the reader so the test process can end
        with open(fifo, "wb"):
            pass
    assert "larger than" in outcome.get(huge.name, "")
    assert "not a regular file" in outcome.get(fifo.name, "")


# ---------------------------------------------------------------------------- the weights' sha256


def test_saved_config_records_the_sha256_of_the_weights_written(tnet, tmp_path):
    out = zoo.save_pretrained(tnet, tmp_path / "saved")
    digest = sha256(out / "model.safetensors")
    assert _config(out)["zoo"]["weights_sha256"] == {"model.safetensors": digest}
    assert recorded_sha256(_config(out)) == {"model.safetensors": digest}
    check_saved_weights(out, _config(out), out / "model.safetensors")  # the untouched file passes


def test_a_bit_flipped_after_saving_is_refused_naming_the_file(tnet, tmp_path):
    out = zoo.save_pretrained(tnet, tmp_path / "saved")
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-5] ^= 0x01  # one bit of one weight: the file still parses
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.WeightsError, match=r"model\.safetensors is corrupt or was changed after saving"):
        check_saved_weights(out, _config(out), weights)
    with pytest.raises(zoo.WeightsError, match=r"model\.safetensors is corrupt or was changed after saving"):
        zoo.create(f"local-dir:{out}")
    zoo.create(f"local-dir:{out}", pretrained=False)  # the architecture alone reads no weights


def test_folders_saved_without_a_hash_still_pass_and_a_malformed_record_is_refused(tmp_path):
    check_saved_weights(FORMAT_V1, _config(FORMAT_V1), FORMAT_V1 / "model.safetensors")  # zoo 0.1.0
    check_saved_weights(tmp_path, {"model_type": "bert"}, tmp_path / "model.safetensors")  # transformers
    with pytest.raises(zoo.WeightsError, match="malformed"):
        recorded_sha256({"zoo": {"format": 1, "weights_sha256": {"model.safetensors": "not-a-digest"}}})


# ---------------------------------------------------------------------------- NaN and Inf


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_model_with_non_finite_parameters_is_never_saved_or_pushed(tnet, tmp_path, monkeypatch, bad):
    import huggingface_hub

    tnet.register_buffer("mask", torch.tensor([float("-inf"), 0.0]))  # buffers may hold -inf on purpose
    zoo.save_pretrained(tnet, tmp_path / "fine")
    with torch.no_grad():
        tnet.stage[0].weight[0, 0, 0, 0] = bad
    with pytest.raises(zoo.WeightsError, match=r"parameter stage\.0\.weight holds NaN or Inf"):
        zoo.save_pretrained(tnet, tmp_path / "saved")
    assert not (tmp_path / "saved").exists()
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", lambda *a, **k: pytest.fail("uploaded"))
    with pytest.raises(zoo.WeightsError, match=r"stage\.0\.weight"):
        zoo.push_to_hub(tnet, "me/nan-model", token="hf_x", create_repo=False)
    plain = torch.nn.Linear(2, 2)
    with torch.no_grad():
        plain.bias[1] = bad
    with pytest.raises(zoo.WeightsError, match="parameter bias"):
        save_model(plain, tmp_path / "plain")


# ---------------------------------------------------------------------------- pushing without a Hub


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("where", ["offline", "closed-port"])
def test_push_to_hub_without_network_is_one_clear_error(tnet, monkeypatch, where):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", where == "offline")
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    start = time.monotonic()
    with pytest.raises(zoo.ZooError) as caught:
        zoo.push_to_hub(tnet, "me/tnet", token="hf_x")
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert "\n" not in message and message.startswith("could not reach the Hub")
    assert "HF_HUB_OFFLINE" in message and "token" in message


def test_the_trainer_saves_a_best_model_whose_buffers_hold_inf_masks_but_not_nan_parameters(tnet, tmp_path):
    from zoo.finetune.checkpoint import NonFiniteError, save_best

    tnet.register_buffer("mask", torch.tensor([float("-inf"), 0.0]))
    save_best(tnet, tmp_path / "best")
    assert (tmp_path / "best" / "model.safetensors").is_file()
    with torch.no_grad():
        next(tnet.parameters())[0] = float("nan")
    with pytest.raises(NonFiniteError, match="NaN or Inf"):
        save_best(tnet, tmp_path / "best")
