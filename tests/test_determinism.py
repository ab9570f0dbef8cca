"""What repeats: the same data, seed and thread count on the same machine give bit-identical runs.

Each run is a fresh process (its own hash seed), as two `zoo finetune` commands would be. The run
covers every source of chance a fine-tune has: a tokenizer trained on the texts, shuffled batches,
dropout and random image augmentation.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import trainer_models as tm

TESTS = Path(__file__).resolve().parent

RUN = textwrap.dedent("""
    import hashlib, json, sys
    import torch
    import trainer_models as tm
    import zoo, zoo.data
    from zoo.finetune import fit

    torch.set_num_threads(1)
    tm.register_cards()

    def run(model, data):
        train = zoo.data.dataset_for(model, data, train=True)
        result = fit(model, train, zoo.data.dataset_for(model, data, classes=train.classes), epochs=2, batch_size=8,
                     lr=3e-3, seed=5, progress=False, verbose=False)
        weights = b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values())
        history = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in result.history]
        return {"history": history, "weights": hashlib.sha256(weights).hexdigest()}

    texts, images = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)  # torch starts each process from a random seed: the new models' initial weights
    text_model = zoo.create("lstm_classifier", num_classes=2, vocab_size=120, embed_dim=16, hidden_size=16,
                            dropout=0.3)
    image_model = zoo.create("trainer_conv", num_classes=3)
    print(json.dumps({"text": run(text_model, texts), "image": run(image_model, images)}))
""")


def _texts(path: Path) -> Path:
    """Sentences labelled by their opinion word, among filler words in random order."""
    rng = random.Random(0)
    filler = "the a movie film was plot actors music really quite story ending scenes city night".split()
    rows = ["text,label"]
    for _ in range(48):
        label = rng.randrange(2)
        words = rng.sample(filler, rng.randint(3, 8)) + [rng.choice(["great", "lovely"] if label else ["dull", "bad"])]
        rng.shuffle(words)
        rows.append(f"{' '.join(words)},{'pos' if label else 'neg'}")
    path.write_text("\n".join(rows) + "\n")
    return path


def _start(script: Path, texts: Path, images: Path, hash_seed: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "PYTHONHASHSEED": hash_seed}
    return subprocess.Popen([sys.executable, str(script), str(texts), str(images)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _result(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=240)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.splitlines()[-1])


def test_two_runs_with_the_same_seed_and_threads_in_fresh_processes_are_bit_identical(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    texts = _texts(tmp_path / "texts.csv")
    images = tm.write_image_folder(tmp_path / "images", per_class=8, size=20)
    processes = [_start(script, texts, images, hash_seed) for hash_seed in ("1", "2")]  # both at once
    try:
        first, second = (_result(process) for process in processes)
    finally:
        for process in processes:
            process.kill()
    for kind in ("text", "image"):
        assert len(first[kind]["history"]) == 2
        assert first[kind]["history"] == second[kind]["history"], kind  # floats compared exactly
        assert first[kind]["weights"] == second[kind]["weights"], kind
