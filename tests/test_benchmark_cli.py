"""`zoo benchmark`: one table across models of every modality (inference and a training step), or JSON."""
from __future__ import annotations

import json

import pytest
import trainer_models as tm

from zoo.cli import main
from zoo.commands.benchmark import COLUMNS

NAMES = ["trainer_conv", "trainer_text", "trainer_audio"]
FAST = ["--batch", "2", "--steps", "1", "--warmup", "1", "--device", "cpu"]


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


def test_the_table_has_one_row_per_model_under_the_speed_and_memory_columns(capsys):
    assert main(["benchmark", *NAMES, *FAST]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MODEL", "BATCH", "PREC", "DEVICE", "PARAMS(M)", "INFER", "MS", "INFER/S", "INFER",
                                "MIB", "TRAIN", "MS", "TRAIN/S", "TRAIN", "MIB"]
    rows = [line.split() for line in lines[1:4]]
    assert [row[0] for row in rows] == NAMES
    assert all(row[1:4] == ["2", "fp32", "cpu"] and float(row[5]) > 0 and float(row[8]) > 0 for row in rows)
    assert lines[4].startswith("threads: 1;")


def test_json_gives_one_object_per_model_with_every_figure(capsys):
    assert main(["benchmark", "trainer_conv", "trainer_audio", *FAST, "--precision", "bf16", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["model"] for row in rows] == ["trainer_conv", "trainer_audio"]
    for row in rows:
        assert set(COLUMNS) | {"modality"} == set(row) and row["precision"] == "bf16"
        assert row["infer_samples_per_s"] == pytest.approx(2 / row["infer_ms"] * 1000, rel=0.01)
        assert row["train_ms"] > 0 and row["infer_peak_mib"] >= 0 <= row["train_peak_mib"]


def test_an_unknown_precision_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["benchmark", "trainer_conv", "--precision", "int4"])
    assert "choose from 'fp32', 'bf16', 'fp16'" in capsys.readouterr().err
