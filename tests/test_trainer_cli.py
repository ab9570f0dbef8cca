"""`zoo finetune`, `zoo evaluate`, `zoo predict` and the README's main job (`zoo demo` + `zoo finetune`)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import trainer_models as tm

from zoo.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


def test_finetune_evaluate_and_predict_an_image_model(tmp_path, capsys):
    train = tm.write_image_folder(tmp_path / "train", per_class=8)
    val = tm.write_image_folder(tmp_path / "val", per_class=4, seed=1)
    out = tmp_path / "model"
    code = main(["finetune", "trainer_conv", "--data", str(train), "--val", str(val), "--epochs", "4",
                 "--lr", "0.02", "--batch-size", "8", "--strategy", "no_freeze", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert re.search(r"accuracy before fine-tuning: \d+\.\d% on the validation data", printed)
    after = re.search(r"accuracy after fine-tuning:  (\d+\.\d)%", printed)
    assert after and float(after.group(1)) >= 75.0
    assert {"config.json", "model.safetensors", "README.md", "training.json"} <= {p.name for p in out.iterdir()}
    assert (out / "checkpoints" / "last.pt").is_file()

    assert main(["evaluate", str(out), "--data", str(val), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == 12 and report["classes"] == ["class_0", "class_1", "class_2"]
    assert f"{report['accuracy'] * 100:.1f}" == after.group(1)  # the saved model is the best epoch's

    image = val / "class_2" / "0.png"
    assert main(["predict", str(out), str(image), "--top-k", "2", "--json"]) == 0
    predictions = json.loads(capsys.readouterr().out)
    assert predictions[0]["input"] == str(image) and len(predictions[0]["predictions"]) == 2
    assert predictions[0]["predictions"][0]["label"] in {"class_0", "class_1", "class_2"}


def test_finetune_resume_continues_a_stopped_run(tmp_path, capsys):
    train = tm.write_image_folder(tmp_path / "train", per_class=4)
    out = tmp_path / "model"
    args = ["finetune", "trainer_conv", "--data", str(train), "--epochs", "2", "--batch-size", "4", "--out", str(out),
            "--quiet", "--strategy", "no_freeze"]
    assert main(args[:4] + ["--epochs", "1"] + args[6:]) == 0
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0
    printed = capsys.readouterr().out
    assert "resumed from epoch 2" in printed and "accuracy before" not in printed


def test_finetune_text_and_bad_data_errors(tmp_path, capsys):
    data = tmp_path / "reviews.jsonl"
    rows = [("good fun", "pos"), ("great film", "pos"), ("bad plot", "neg"), ("dull film", "neg")] * 4
    data.write_text("".join(json.dumps({"text": t, "sentiment": label}) + "\n" for t, label in rows))
    out = tmp_path / "text-model"
    assert main(["finetune", "trainer_text", "--data", str(data), "--label-column", "sentiment", "--epochs", "6",
                 "--lr", "0.05", "--batch-size", "4", "--strategy", "no_freeze", "--out", str(out), "--quiet"]) == 0
    assert "on the training data" in capsys.readouterr().out
    assert main(["predict", str(out), "great fun", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["predictions"][0]["label"] in {"pos", "neg"}

    assert main(["finetune", "trainer_text", "--data", str(data), "--out", str(out)]) == 2  # no 'label' column
    assert "no label column 'label'" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["finetune", "trainer_conv", "--data", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert "no class sub-folders" in capsys.readouterr().err


def test_demo_data_is_deterministic(tmp_path):
    from zoo import demo

    a = demo.write_shapes(tmp_path / "a", per_class=2, seed=5)
    b = demo.write_shapes(tmp_path / "b", per_class=2, seed=5)
    files = sorted(p.relative_to(a) for p in a.rglob("*.png"))
    assert len(files) == 2 * len(demo.FINETUNE_CLASSES)
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)


def readme_quick_start() -> list[str]:
    """The two command lines at the top of README.md."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = re.search(r"## Quick start\s+```bash\n(.*?)\n```", text, re.S).group(1)
    return block.splitlines()


def test_readme_main_job_runs_offline_and_improves_accuracy(tmp_path):
    """The README's first command after its install step, as a user types it, in a shell, offline."""
    main_line = readme_quick_start()[0]
    steps = main_line.split(" && ")
    job = " && ".join(steps[next(i for i, s in enumerate(steps) if s.startswith("pip install")) + 1:])
    assert job.startswith("zoo demo") and "zoo finetune" in job
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ZOO_CACHE": str(tmp_path / "cache"),
           "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    started = time.perf_counter()
    run = subprocess.run(["bash", "-c", job], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    seconds = time.perf_counter() - started
    assert run.returncode == 0, run.stderr[-2000:]
    before = float(re.search(r"accuracy before fine-tuning: (\d+\.\d)%", run.stdout).group(1))
    after = float(re.search(r"accuracy after fine-tuning:  (\d+\.\d)%", run.stdout).group(1))
    assert after >= 75.0 and after > before + 40, run.stdout
    assert (tmp_path / "zoo-demo" / "finetuned" / "model.safetensors").is_file()
    print(f"main job: {seconds:.0f} s, accuracy {before}% -> {after}%")
