"""Speed by default: the commands and zoo.pipeline choose threads, batch size, precision and memory format,
say so in one line, and --threads / --precision win over the choice."""
from __future__ import annotations

import re

import pytest
import torch
import trainer_models as tm

import zoo
from zoo import speed
from zoo.cli import main

CLASSES = ["class_0", "class_1", "class_2"]
LINE = re.compile(r"^using (\d+) threads?, batch (\d+), (fp32|bf16|fp16)(, channels_last)?$", re.MULTILINE)


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():  # restores torch's thread count afterwards
        yield


@pytest.fixture
def image_model(tmp_path):
    return zoo.save_pretrained(zoo.create("trainer_conv"), tmp_path / "image-model", labels=CLASSES)


def test_predict_says_its_choices_in_one_line_and_threads_override(image_model, tmp_path, capsys):
    photos = tm.write_image_folder(tmp_path / "photos", classes=2, per_class=2)
    assert main(["predict", str(image_model), str(photos)]) == 0
    captured = capsys.readouterr()
    found = LINE.findall(captured.err)
    assert len(found) == 1 and found[0][1:3] == ("64", "fp32")  # a CPU: batch 64, fp32 (results unchanged)
    assert len(captured.out.splitlines()) == 4  # the line is not among the predictions

    assert main(["predict", str(image_model), str(photos), "--threads", "2", "--batch-size", "3",
                 "--precision", "bf16"]) == 0
    assert LINE.findall(capsys.readouterr().err)[0][:3] == ("2", "3", "bf16")
    assert torch.get_num_threads() == 2


def test_evaluate_says_its_choices_and_precision_overrides(image_model, tmp_path, capsys):
    val = tm.write_image_folder(tmp_path / "val", per_class=2)
    assert main(["evaluate", str(image_model), "--data", str(val), "--threads", "1", "--precision", "fp32"]) == 0
    captured = capsys.readouterr()
    assert LINE.findall(captured.err) == [("1", "64", "fp32", "")]
    assert "samples:  6" in captured.out


def test_pipeline_chooses_and_the_given_values_win():
    model = zoo.create("trainer_conv")
    chosen = zoo.pipeline(model)
    assert (chosen.batch_size, chosen.speed.precision, chosen.speed.channels_last) == (64, "fp32", False)
    assert LINE.fullmatch(chosen.speed.line())
    given = zoo.pipeline(model, batch_size=5, precision="bf16", threads=2)
    assert (given.batch_size, given.speed.precision, torch.get_num_threads()) == (5, "bf16", 2)
    with pytest.raises(zoo.errors.InvalidArgumentError, match="auto, fp32, bf16, fp16"):
        zoo.pipeline(model, precision="int4")


def test_fp32_pipeline_scores_equal_the_models(tmp_path):
    model = zoo.create("trainer_conv").eval()
    images = [torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(i)) for i in range(4)]
    fp32 = zoo.pipeline(model, precision="fp32", top_k=1)(images)
    with torch.no_grad():
        eager = model(torch.stack([zoo.data.images.image_transform(model)(im) for im in images])).softmax(-1)
    assert [r[0]["score"] for r in fp32] == pytest.approx(eager.max(-1).values.tolist(), abs=1e-6)


def test_threads_follow_physical_cores_unless_the_user_chose(monkeypatch):
    monkeypatch.setattr(speed, "_DEFAULT_THREADS", torch.get_num_threads())  # nothing chosen yet
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setattr(speed, "physical_cores", lambda: 1)
    assert speed.choose_threads() == 1
    torch.set_num_threads(2)
    monkeypatch.setattr(speed, "_DEFAULT_THREADS", 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert speed.choose_threads() == 2  # the environment says how many: left alone
    assert speed.choose_threads(1) == 1  # --threads wins


def test_channels_last_and_bf16_only_where_the_device_gains():
    conv = zoo.create("trainer_conv")
    assert not speed.wants_channels_last(conv, torch.device("cpu"))
    assert speed.wants_channels_last(conv, torch.device("cuda"))
    assert not speed.wants_channels_last(torch.nn.Linear(2, 2), torch.device("cuda"))
    assert speed.resolve_precision("auto", torch.device("cpu")) == "fp32"
    assert speed.resolve_precision("fp16", torch.device("cpu")) == "fp16"
