"""No code from data: a saved model's config.json or a Hub repo can only name builders installed plugins registered."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import trainer_models as tm
from weights_models import fill_hf_cache, isolate_caches

import zoo
from zoo.cli import main
from zoo.errors import UntrustedCodeError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "format_v1" / "model"
PAYLOAD = "zoo_test_payload"


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


@pytest.fixture
def payload(tmp_path, monkeypatch):
    """A module on sys.path that leaves a marker file when imported: importing it is the attack."""
    marker = tmp_path / "payload-ran"
    site = tmp_path / "payload-site"
    site.mkdir()
    (site / f"{PAYLOAD}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
        "def build(**kwargs):\n    raise SystemExit('payload builder called')\n")
    monkeypatch.syspath_prepend(str(site))
    yield marker
    sys.modules.pop(PAYLOAD, None)


def _folder_naming(tmp_path: Path, builder: str) -> Path:
    """A zoo model folder (weights and all) whose config.json names `builder`."""
    folder = tmp_path / "stranger"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("checkpoints"))
    config = json.loads((folder / "config.json").read_text())
    config["card"]["builder"] = builder
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _assert_not_imported(marker: Path) -> None:
    assert not marker.exists(), "the module a data file named was imported"
    assert PAYLOAD not in sys.modules


@pytest.mark.parametrize("pretrained", [None, True, False])
def test_local_dir_config_naming_an_unregistered_module_is_refused_before_import(tmp_path, payload, pretrained):
    folder = _folder_naming(tmp_path, f"{PAYLOAD}:build")
    with pytest.raises(UntrustedCodeError, match="no installed plugin registered"):
        zoo.create(f"local-dir:{folder}", pretrained=pretrained)
    _assert_not_imported(payload)


@pytest.mark.parametrize("builder", ["os:system", "subprocess:run", "builtins:exec", "zoo._imports:import_object"])
def test_config_naming_standard_library_callables_is_refused(tmp_path, builder):
    folder = _folder_naming(tmp_path, builder)
    with pytest.raises(UntrustedCodeError, match=builder):
        zoo.create(f"local-dir:{folder}", pretrained=False)


def test_hub_repo_naming_an_unregistered_module_is_refused_before_import(tmp_path, payload, monkeypatch):
    dirs = isolate_caches(monkeypatch, tmp_path)
    folder = _folder_naming(tmp_path, f"{PAYLOAD}:build")
    fill_hf_cache(dirs["hf"], "stranger/model", {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()})
    with pytest.raises(UntrustedCodeError):
        zoo.create("hf-hub:stranger/model")
    _assert_not_imported(payload)


def test_transformers_checkpoint_with_its_own_code_is_refused(tmp_path, payload):
    folder = tmp_path / "remote-code"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({
        "model_type": "bert", "architectures": ["EvilModel"],
        "auto_map": {"AutoModel": f"{PAYLOAD}.EvilModel"}}))
    with pytest.raises(UntrustedCodeError, match="auto_map"):
        zoo.create(f"local-dir:{folder}")
    _assert_not_imported(payload)


@pytest.mark.parametrize("command", ["predict", "evaluate", "finetune"])
def test_cli_refuses_a_folder_that_names_unregistered_code(tmp_path, payload, capsys, command):
    folder = _folder_naming(tmp_path, f"{PAYLOAD}:build")
    data = tm.write_image_folder(tmp_path / "data", per_class=2)
    image = next(data.rglob("*.png"))
    argv = {"predict": ["predict", str(folder), str(image)],
            "evaluate": ["evaluate", str(folder), "--data", str(data)],
            "finetune": ["finetune", f"local-dir:{folder}", "--data", str(data), "--epochs", "1",
                         "--out", str(tmp_path / "out"), "--quiet"]}[command]
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert "no installed plugin registered" in err and "Traceback" not in err
    _assert_not_imported(payload)


def test_a_registered_builder_named_by_a_strangers_folder_still_loads(tmp_path):
    folder = _folder_naming(tmp_path, "trainer_models:SmallConvNet")
    assert zoo.card_of(zoo.create(f"local-dir:{folder}")).num_classes == 3


# ---------------------------------------------------------------------------- bad input: one clear error


def _edit_config(tmp_path: Path, edit) -> Path:
    folder = _folder_naming(tmp_path, "trainer_models:SmallConvNet")
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.pop("card"), "no 'card'"),
    (lambda c: c.update(card="resnet"), "no 'card'"),
    (lambda c: c.update(labels="abc"), "list of strings"),
    (lambda c: c.update(labels=[1, 2, 3]), "list of strings"),
    (lambda c: c.update(labels=["a", "b"]), "2 labels for a model with 3 outputs"),
    (lambda c: c.update(num_classes="3"), "num_classes"),
    (lambda c: c.update(num_classes=10**9), "num_classes"),
    (lambda c: c["card"]["input"].update(size=10**6), "16384"),
    (lambda c: c["card"].pop("task"), "malformed"),
])
def test_a_malformed_saved_config_is_one_clear_error(tmp_path, edit, message):
    folder = _edit_config(tmp_path, edit)
    with pytest.raises(zoo.WeightsError, match=message):
        zoo.create(f"local-dir:{folder}")


def test_config_json_that_is_a_fifo_or_a_device_is_refused_without_reading_it(tmp_path):
    import os

    fifo = _folder_naming(tmp_path, "trainer_models:SmallConvNet")
    (fifo / "config.json").unlink()
    os.mkfifo(fifo / "config.json")  # reading it would block for ever
    with pytest.raises(zoo.WeightsError, match="not a regular file"):
        zoo.create(f"local-dir:{fifo}")
    (fifo / "config.json").unlink()
    (fifo / "config.json").symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(zoo.WeightsError, match="not a regular file"):
        zoo.create(f"local-dir:{fifo}")


def test_an_oversized_config_json_is_refused(tmp_path):
    folder = _folder_naming(tmp_path, "trainer_models:SmallConvNet")
    with open(folder / "config.json", "ab") as fh:
        fh.truncate(17 * 1024 * 1024)
    with pytest.raises(zoo.WeightsError, match="at most"):
        zoo.create(f"local-dir:{folder}")


def test_an_over_long_local_dir_path_is_one_clear_error():
    with pytest.raises(zoo.WeightsError, match="cannot use this path"):
        zoo.create("local-dir:/" + "x" * 5000)


def test_transformers_config_with_missing_or_ill_typed_fields_is_one_clear_error(tmp_path):
    folder = tmp_path / "bert"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": "wide"}))
    with pytest.raises(zoo.WeightsError, match="not a usable transformers config"):
        zoo.create(f"local-dir:{folder}", pretrained=False)
    (folder / "config.json").write_text(json.dumps({"model_type": ["bert"]}))
    with pytest.raises(zoo.WeightsError, match="model_type"):
        zoo.create(f"local-dir:{folder}", pretrained=False)


def test_integer_or_complex_tensors_for_float_parameters_are_refused(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    for dtype in (torch.int64, torch.complex64):
        folder = _folder_naming(tmp_path / str(dtype), "trainer_models:SmallConvNet")
        state = load_file(str(folder / "model.safetensors"))
        state["head.weight"] = state["head.weight"].to(dtype)
        save_file(state, str(folder / "model.safetensors"))
        with pytest.raises(zoo.WeightsError, match="head.weight.*not a float tensor"):
            zoo.create(f"local-dir:{folder}")


@pytest.mark.parametrize("call, message", [
    (lambda: zoo.create(123), "model name is a string"),
    (lambda: zoo.create(None), "model name is a string"),
    (lambda: zoo.create("trainer_conv", pretrained="no"), "pretrained must be True or False"),
    (lambda: zoo.create("trainer_conv", num_classes=2_000_000), "num_classes must be an integer from 0"),
    (lambda: zoo.create("trainer_conv", num_classes=-1), "num_classes must be an integer from 0"),
    (lambda: zoo.list_models(5), "pattern must be a wildcard string"),
    (lambda: zoo.list_models(pretrained="yes"), "pretrained must be True or False"),
])
def test_bad_arguments_to_the_python_api_are_zoo_errors(call, message):
    with pytest.raises(zoo.InvalidArgumentError, match=message):
        call()


def test_an_image_side_over_16384_pixels_is_refused_before_building():
    with pytest.raises(zoo.InvalidArgumentError, match="image_size must be from 1 to 16384"):
        zoo.create("vit_b_16", image_size=100_000)


def test_get_card_of_a_saved_folder_whose_path_has_dots(tmp_path):
    folder = tmp_path / "runs.v2" / "model.best"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("checkpoints"))
    card = zoo.get_card(f"local-dir:{folder}")
    assert (card.name, card.num_classes, list(card.extra["labels"])) == (
        "trainer_conv", 3, ["class_0", "class_1", "class_2"])


@pytest.mark.parametrize("name", ["hf-hub:a/b/c", "hf-hub:../x", "hf-hub:org/re po", "hf-hub:org/" + "x" * 200])
def test_hf_hub_names_the_hub_client_rejects_are_one_clear_error(name, capsys):
    with pytest.raises(zoo.WeightsError, match="is not a Hugging Face Hub repo id"):
        zoo.create(name)
    assert main(["predict", name, "x.png"]) != 0
    assert "is not a Hugging Face Hub repo id" in capsys.readouterr().err


def test_torch_hub_load_of_a_folder_naming_unregistered_code_is_refused(tmp_path, payload, monkeypatch):
    import torch
    from conftest import REPO

    monkeypatch.delitem(sys.modules, "hubconf", raising=False)
    folder = _folder_naming(tmp_path, f"{PAYLOAD}:build")
    with pytest.raises(UntrustedCodeError):
        torch.hub.load(str(REPO), "create", f"local-dir:{folder}", source="local")
    _assert_not_imported(payload)
    trusted = _folder_naming(tmp_path / "ok", "trainer_models:SmallConvNet")
    model = torch.hub.load(str(REPO), "create", f"local-dir:{trusted}", source="local")
    assert zoo.card_of(model).num_classes == 3


def test_zoo_info_of_a_saved_folder_reads_its_whole_path(tmp_path, capsys):
    folder = tmp_path / "runs.v2" / "model.best"
    shutil.copytree(FIXTURE, folder, ignore=shutil.ignore_patterns("checkpoints"))
    assert main(["info", f"local-dir:{folder}"]) == 0
    out = capsys.readouterr().out
    assert "trainer_conv" in out and "trainer_models:SmallConvNet" in out


def test_a_tokenizer_named_by_a_bad_hub_repo_id_is_one_clear_error():
    from zoo.data.text import load_tokenizer

    with pytest.raises(zoo.WeightsError, match="is not a Hugging Face Hub repo id"):
        load_tokenizer("hf-hub:../../etc")
