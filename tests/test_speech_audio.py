"""zoo.data.audio: files in real formats (WAV, FLAC, OGG) -> mono, resampled, cut clips -> padded batches."""
from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")
soundfile = pytest.importorskip("soundfile")

import zoo  # noqa: E402
from zoo.data.audio import (  # noqa: E402
    AudioReadError,
    audio_transform,
    collate_audio,
    is_audio_file,
    lengths_to_mask,
    load_audio,
    pad_or_crop,
    prepare_audio,
    read_audio,
    resample,
    time_shift,
    to_mono,
)


def tone(freq: float, rate: int, seconds: float, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * math.pi * freq * t).astype(np.float32)
    return np.stack([wave * (c + 1) / channels for c in range(channels)], axis=1)


@pytest.mark.parametrize("fmt,subtype,tol", [("WAV", "PCM_16", 1e-4), ("FLAC", "PCM_24", 1e-6),
                                             ("OGG", "VORBIS", 0.05)])
def test_reads_wav_flac_and_ogg_as_float_channels_first(tmp_path, fmt, subtype, tol):
    data = tone(440, 22050, 0.5, channels=2)
    path = tmp_path / f"clip.{fmt.lower()}"
    soundfile.write(path, data, 22050, format=fmt, subtype=subtype)
    wave, rate = read_audio(path)
    assert rate == 22050 and wave.dtype == torch.float32 and wave.shape[0] == 2
    assert abs(wave.shape[1] - data.shape[0]) <= (0 if fmt != "OGG" else 2048)
    n = min(wave.shape[1], data.shape[0])
    if fmt != "OGG":
        assert np.abs(wave[:, :n].numpy().T - data[:n]).max() <= tol
    else:  # lossy: compare energy rather than samples
        assert abs(float(wave.pow(2).mean()) - float((data ** 2).mean())) <= tol


def test_load_audio_mixes_down_resamples_and_fits_the_card_clip(tmp_path):
    path = tmp_path / "stereo.wav"
    soundfile.write(path, tone(440, 44100, 1.5, channels=2), 44100, subtype="FLOAT")
    spec = zoo.get_card("kws_cnn_s").input
    clip = load_audio(path, spec)
    assert clip.shape == (16000,)  # 1.5 s at 44.1 kHz -> 1 s at 16 kHz, center crop
    spectrum = torch.fft.rfft(clip).abs()
    assert abs(int(spectrum.argmax()) - 440) <= 1  # 1 Hz bins over one second: the tone survived resampling
    assert abs(float(clip.abs().max()) - 0.375) < 0.01  # the mean of the channels' amplitudes 0.25 and 0.5
    variable = load_audio(path, zoo.get_card("wav2vec2_base").input)  # no clip length: keep it all
    assert variable.shape == (24000,)


def test_mono_resample_pad_and_crop_primitives():
    stereo = torch.stack([torch.ones(10), 3 * torch.ones(10)])
    assert torch.equal(to_mono(stereo), 2 * torch.ones(10)) and to_mono(torch.ones(5)).shape == (5,)
    assert resample(torch.ones(100), 8000, 8000).shape == (100,)
    assert resample(torch.randn(8000), 8000, 16000).shape == (16000,)
    wave = torch.arange(10.0)
    assert torch.equal(pad_or_crop(wave, 4), torch.tensor([3.0, 4.0, 5.0, 6.0]))  # eval: centre
    assert torch.equal(pad_or_crop(wave, 12)[10:], torch.zeros(2))  # pad at the end
    crops = {tuple(pad_or_crop(wave, 4, train=True, generator=random.Random(s)).tolist()) for s in range(20)}
    assert len(crops) > 1 and all(len(c) == 4 for c in crops)
    kept = prepare_audio(torch.randn(2, 100), 16000, zoo.AudioInput(sample_rate=16000, mono=False), clip_seconds=0.01)
    assert kept.shape == (2, 160)


def test_collate_pads_variable_lengths_with_masks_and_labels():
    batch = collate_audio([(torch.ones(5), 1), (torch.ones(3), 0), (torch.ones(7), 2)])
    waves, lengths, labels = batch  # a plain (waveforms, lengths, labels) triple
    assert waves.shape == (3, 7) and lengths.tolist() == [5, 3, 7] and labels.tolist() == [1, 0, 2]
    assert batch.mask.tolist()[1] == [True] * 3 + [False] * 4
    assert float(waves[1, 3:].abs().sum()) == 0.0
    assert torch.equal(lengths_to_mask(lengths, 7), batch.mask)
    assert collate_audio([torch.ones(2), torch.ones(4)]).labels is None
    assert collate_audio([(torch.ones(2), "yes"), (torch.ones(2), "no")]).labels == ["yes", "no"]
    with pytest.raises(zoo.InvalidArgumentError, match="mono"):
        collate_audio([torch.ones(2, 5), torch.ones(1, 5)])


def test_transform_is_picklable_and_errors_name_the_file(tmp_path):
    path = tmp_path / "a.flac"
    soundfile.write(path, tone(300, 16000, 0.3), 16000)
    transform = pickle.loads(pickle.dumps(audio_transform(zoo.get_card("kws_cnn_s").input, train=True, seed=0)))
    assert transform(path).shape == (16000,) and "train=True" in repr(transform)
    assert is_audio_file(path) and is_audio_file("X.WAV") and not is_audio_file("notes.txt")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"not audio")
    with pytest.raises(AudioReadError, match="broken.wav"):
        read_audio(bad)
    with pytest.raises(zoo.ZooError):
        read_audio(tmp_path / "missing.wav")


def test_training_clips_shift_in_time_and_evaluation_clips_do_not(tmp_path):
    path = tmp_path / "click.wav"
    data = np.zeros(16000, dtype=np.float32)
    data[8000] = 1.0  # one click in the middle of a one-second clip
    soundfile.write(path, data, 16000, subtype="FLOAT")
    spec = zoo.AudioInput(sample_rate=16000, clip_seconds=1.0)
    assert int(load_audio(path, spec).argmax()) == 8000
    where = {int(load_audio(path, spec, train=True, generator=random.Random(s)).argmax()) for s in range(30)}
    assert len(where) > 5 and all(abs(w - 8000) <= 1600 for w in where)
    assert {int(load_audio(path, spec, train=True, shift_fraction=0.0).argmax()) for _ in range(5)} == {8000}
    assert torch.equal(time_shift(torch.arange(1.0, 5.0), 0), torch.arange(1.0, 5.0))
