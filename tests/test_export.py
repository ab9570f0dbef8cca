"""`zoo export` / `zoo.export`: ONNX and torch.export programs that agree with eager PyTorch, take any batch,
carry their serving files, quantize to int8 with the cost reported, run in `zoo.pipeline`, and fail in one line
naming the operation when the exporter cannot handle the model."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import onnxruntime
import pytest
import torch
import trainer_models as tm
from torch import nn

import zoo
from zoo.cards import attach_card
from zoo.cli import main
from zoo.data.text import tokenizer_for
from zoo.exports import ExportError, export

CLASSES = ["cat", "dog", "fox"]


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


def _labelled_conv() -> nn.Module:
    torch.manual_seed(0)
    model = zoo.create("trainer_conv")
    card = zoo.cards.card_of(model)
    attach_card(model, dataclasses.replace(card, extra={**card.extra, "labels": CLASSES}))
    return model.eval()


def test_onnx_export_agrees_with_eager_for_any_batch_and_writes_the_serving_files(tmp_path):
    model = _labelled_conv()
    result = export(model, tmp_path / "out", format="onnx")

    assert result.ok and len(result.parity) == 2 and "parity with eager PyTorch (onnxruntime)" in str(result)
    serving = json.loads((tmp_path / "out" / "serving.json").read_text())
    assert serving["model_file"] == "model.onnx" and serving["labels"] == CLASSES
    assert serving["inputs"] == [{"name": "pixel_values", "dtype": "float32", "shape": ["batch", 3, 16, 16]}]
    assert serving["preprocessing"] | {} == {**serving["preprocessing"], "size": 16, "resize_size": 18,
                                             "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                                             "interpolation": "bilinear"}
    session = onnxruntime.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    for batch in (1, 3):  # the batch is free
        x = torch.randn(batch, 3, 16, 16)
        got = session.run(None, {"pixel_values": x.numpy()})[0]
        with torch.no_grad():
            np.testing.assert_allclose(got, model(x).numpy(), atol=1e-5)


def test_exported_program_loads_and_agrees_with_eager(tmp_path):
    model = _labelled_conv()
    result = export(model, tmp_path / "out", format="exported-program")

    assert result.ok and result.model_file.name == "model.pt2"
    loaded = torch.export.load(str(result.model_file)).module()
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))


def test_text_and_audio_exports_have_free_sequence_lengths(tmp_path):
    text = zoo.create("trainer_text")
    tokenizer_for(text, train_texts=["good fun", "great film", "bad plot", "dull film"])
    result = export(text, tmp_path / "text", format="onnx")
    serving = json.loads((tmp_path / "text" / "serving.json").read_text())
    assert result.ok and [i["shape"] for i in serving["inputs"]] == [["batch", "sequence"]] * 2
    assert serving["preprocessing"]["tokenizer"] == "tokenizer.json"
    assert (tmp_path / "text" / "tokenizer.json").is_file()
    assert [check.shapes for check in result.parity] == ["input_ids [2, 16], attention_mask [2, 16]",
                                                          "input_ids [3, 24], attention_mask [3, 24]"]

    audio = export(zoo.create("trainer_audio"), tmp_path / "audio", format="exported-program")
    serving = json.loads((tmp_path / "audio" / "serving.json").read_text())
    assert audio.ok and serving["inputs"][0]["shape"] == ["batch", "samples"]
    assert serving["preprocessing"]["sample_rate"] == 8000


def test_int8_quantization_writes_a_model_and_reports_what_it_changed(tmp_path):
    result = export(_labelled_conv(), tmp_path / "out", format="onnx", quantize="int8")

    report = result.quantization
    assert report is not None and report.path.is_file() and report.measured_on == "example inputs"
    assert report.max_difference is not None and report.max_difference < 0.5
    assert "no data given, so measured on the example inputs" in str(result)
    with pytest.raises(zoo.errors.InvalidArgumentError, match="onnx"):
        export(_labelled_conv(), tmp_path / "ep", format="exported-program", quantize="int8")


def test_pipeline_on_an_exported_onnx_folder_gives_the_eager_pipelines_labels(tmp_path):
    model = _labelled_conv()
    export(model, tmp_path / "out", format="onnx")
    photos = tm.write_image_folder(tmp_path / "photos", classes=2, per_class=2)

    onnx_results = zoo.pipeline(str(tmp_path / "out"), top_k=3)(str(photos))
    eager_results = zoo.pipeline(model, top_k=3)(str(photos))
    assert [[p["label"] for p in r] for r in onnx_results] == [[p["label"] for p in r] for r in eager_results]
    assert {p["label"] for p in onnx_results[0]} == set(CLASSES)
    for ours, theirs in zip(onnx_results, eager_results):
        assert [p["score"] for p in ours] == pytest.approx([p["score"] for p in theirs], abs=1e-5)


class ValueBranch(nn.Module):
    """A Python `if` on a tensor's value: torch.export cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        if x.mean() > 0:
            return self.head(x.mean((2, 3)))
        return -self.head(x.mean((2, 3)))


class Eigenvalues(nn.Module):
    """An operation the ONNX exporter has no function for (symmetric eigenvalues)."""

    def forward(self, x):
        pooled = x.mean(1)
        return torch.linalg.eigvalsh(pooled @ pooled.transpose(-1, -2))


def _carded(module: nn.Module) -> nn.Module:
    attach_card(module, dataclasses.replace(tm.CONV_CARD, name="odd_model", head=None, layer_groups=[]))
    return module.eval()


def test_an_exported_folder_whose_serving_file_names_a_model_elsewhere_is_refused(tmp_path):
    export(_labelled_conv(), tmp_path / "out", format="onnx")
    elsewhere = tmp_path / "elsewhere.onnx"
    serving = tmp_path / "out" / "serving.json"
    config = json.loads(serving.read_text())
    (tmp_path / "out" / config["model_file"]).rename(elsewhere)
    for name in ("../elsewhere.onnx", str(elsewhere)):
        serving.write_text(json.dumps({**config, "model_file": name}))
        with pytest.raises(zoo.ZooError, match="not a file inside"):
            zoo.pipeline(str(tmp_path / "out"))


@pytest.mark.parametrize("fmt", [pytest.param("onnx", marks=pytest.mark.slow), "exported-program"])
def test_a_data_dependent_branch_fails_in_one_line_naming_the_operation_and_the_code(tmp_path, fmt):
    with pytest.raises(ExportError) as caught:
        export(_carded(ValueBranch()), tmp_path / "out", format=fmt)
    message = str(caught.value)
    assert "\n" not in message and f"cannot export odd_model to {fmt}" in message
    assert "aten.item" in message and "if x.mean() > 0:" in message and "test_export.py" in message


def test_an_operation_onnx_cannot_express_is_named(tmp_path):
    with pytest.raises(ExportError) as caught:
        export(_carded(Eigenvalues()), tmp_path / "out", format="onnx")
    message = str(caught.value)
    assert "\n" not in message and "aten._linalg_eigh" in message and "not supported" in message


def test_zoo_export_command_prints_the_parity_check(tmp_path, capsys):
    folder = zoo.save_pretrained(_labelled_conv(), tmp_path / "model")
    assert main(["export", str(folder), "--format", "onnx", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "exported trainer_conv as onnx" in out and out.count(": ok") == 2
    with pytest.raises(SystemExit):  # argparse lists the formats
        main(["export", str(folder), "--format", "tflite", "--out", str(tmp_path / "x")])
    assert "choose from 'onnx', 'exported-program'" in capsys.readouterr().err
