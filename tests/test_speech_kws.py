"""Keyword spotting on the shipped demo words: trained here, judged on two voices it never heard."""
from __future__ import annotations

import random
import shutil
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from conftest import REPO  # noqa: E402

import zoo  # noqa: E402
from zoo.data.audio import collate_audio, load_audio, read_audio  # noqa: E402
from zoo_speech.demo import DEMO_WORDS, demo_data_dir  # noqa: E402


@pytest.fixture
def one_thread():
    """One intra-op thread: on a shared, busy CPU small convolutions run several times faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def load_split(split: str, spec):
    items = [(load_audio(path, spec), label) for label, word in enumerate(DEMO_WORDS)
             for path in sorted((demo_data_dir() / split / word).glob("*.flac"))]
    return collate_audio(items)


def test_demo_dataset_is_small_and_complete():
    root = demo_data_dir()
    files = sorted(root.rglob("*.flac"))
    assert len(files) == 300 and sum(f.stat().st_size for f in files) < 3_000_000
    for split, per_word in (("train", 24), ("val", 6)):
        assert sorted(p.name for p in (root / split).iterdir()) == sorted(DEMO_WORDS)
        assert all(len(list((root / split / w).glob("*.flac"))) == per_word for w in DEMO_WORDS)
    train_voices = {f.name.split("-s")[0] for f in (root / "train").rglob("*.flac")}
    val_voices = {f.name.split("-s")[0] for f in (root / "val").rglob("*.flac")}
    assert len(train_voices) == 8 and len(val_voices) == 2 and not train_voices & val_voices
    wave, rate = read_audio(files[0])
    assert rate == 16000 and wave.shape == (1, 16000)


def test_kws_model_trained_on_demo_words_beats_chance_on_unseen_voices(one_thread):
    torch.manual_seed(0)
    shifts = random.Random(0)
    model = zoo.create("kws_ft", num_classes=len(DEMO_WORDS), width=16)  # the recipe, at half width for speed
    spec = zoo.card_of(model).input
    assert spec.sample_rate == 16000 and spec.clip_seconds == 1.0
    train, val = load_split("train", spec), load_split("val", spec)
    assert train.waveforms.shape == (240, 16000) and val.waveforms.shape == (60, 16000)
    epochs, batch = 8, 32
    steps = epochs * -(-len(train.labels) // batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=6e-3, total_steps=steps)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(train.labels)).split(batch):
            clips = torch.roll(train.waveforms[idx], shifts.randint(-1600, 1600), dims=1)  # +-0.1 s time shift
            loss = torch.nn.functional.cross_entropy(model(clips, train.lengths[idx]), train.labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(val.waveforms, val.lengths).argmax(-1) == val.labels).float().mean().item()
    assert accuracy >= 0.5, f"held-out accuracy {accuracy:.2f} (chance is {1 / len(DEMO_WORDS):.2f})"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
def test_demo_dataset_script_reproduces_the_shipped_files(tmp_path, request):
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("synthesizes 300 clips; run with -m slow")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_speech_demo.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    shipped = {p.relative_to(demo_data_dir()): p.read_bytes() for p in demo_data_dir().rglob("*.flac")}
    made = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*.flac")}
    assert made.keys() == shipped.keys()
    assert all(made[k] == shipped[k] for k in made)
