"""Make the spoken-word demo dataset shipped with the speech plugin.

Ten command words ("yes", "no", "up", "down", "left", "right", "on", "off", "stop",
"go") spoken by the espeak-ng synthesizer with ten voice/variant pairs and three
speed/pitch settings. Each clip is trimmed of silence, centered in a one-second
window at 16 kHz and written as 16-bit FLAC:

    plugins/zoo_speech/demo_data/speech_words/{train,val}/<word>/<voice>-s<speed>-p<pitch>.flac

Eight voices go to `train`, two other voices to `val`, so validation measures
generalization to unseen speakers. The output is deterministic for one espeak-ng
version (1.51 was used); rerun with

    apt-get install -y espeak-ng
    python scripts/make_speech_demo.py [--out DIR]
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from zoo.data.audio import pad_or_crop, resample  # noqa: E402

WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
TRAIN_VOICES = ("en-us+m3", "en-us+f2", "en-gb+m1", "en-gb+f4", "en-gb-scotland+m5",
                "en-us-nyc+m7", "en-gb-x-rp+f1", "en-gb-x-gbclan+m2")
VAL_VOICES = ("en-029+f3", "en-gb-x-gbcwmd+m4")
PROSODY = ((140, 35), (170, 50), (200, 65))  # (words per minute, pitch 0-99)
SAMPLE_RATE = 16000
CLIP_SAMPLES = SAMPLE_RATE  # one second
DEFAULT_OUT = REPO / "plugins" / "zoo_speech" / "demo_data" / "speech_words"


def synthesize(word: str, voice: str, speed: int, pitch: int) -> tuple[np.ndarray, int]:
    """One utterance from espeak-ng, as float32 mono and its sample rate."""
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                         check=True, capture_output=True).stdout
    data, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return data, rate


def trim_silence(data: np.ndarray, threshold: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(data) > threshold)
    return data[loud[0]: loud[-1] + 1] if loud.size else data


def center_in_window(wave: torch.Tensor, samples: int) -> torch.Tensor:
    if wave.shape[-1] >= samples:
        return pad_or_crop(wave, samples)
    left = (samples - wave.shape[-1]) // 2
    return torch.nn.functional.pad(wave, (left, samples - wave.shape[-1] - left))


def make_clip(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    data, rate = synthesize(word, voice, speed, pitch)
    wave = resample(torch.from_numpy(trim_silence(data)), rate, SAMPLE_RATE)
    wave = center_in_window(wave, CLIP_SAMPLES)
    peak = float(wave.abs().max()) or 1.0
    return (wave * (0.9 / peak)).numpy()


def write_flac(path: Path, data: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    soundfile.write(str(tmp), data, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        parser.error("espeak-ng is not installed (apt-get install -y espeak-ng)")
    count = 0
    for split, voices in (("train", TRAIN_VOICES), ("val", VAL_VOICES)):
        for word in WORDS:
            for voice in voices:
                for speed, pitch in PROSODY:
                    name = f"{voice.replace('+', '_')}-s{speed}-p{pitch}.flac"
                    write_flac(args.out / split / word / name, make_clip(word, voice, speed, pitch))
                    count += 1
    size = sum(p.stat().st_size for p in args.out.rglob("*.flac"))
    print(f"wrote {count} clips ({size / 1e6:.2f} MB) under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
