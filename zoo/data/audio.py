"""Audio clips as model inputs: read, mix to mono, resample, pad or crop, and batch.

Files are read with soundfile (WAV, FLAC, OGG/Vorbis and what libsndfile supports);
resampling uses `torchaudio.functional.resample`. What a model expects comes from its
card's `zoo.AudioInput` (sample rate, clip length, mono), so the same code serves every
audio model:

    >>> spec = zoo.get_card("kws_cnn_s").input
    >>> clip = load_audio("yes.flac", spec)              # 1-D float tensor at spec.sample_rate
    >>> batch = collate_audio([(clip, 3), (other, 1)])   # AudioBatch(waveforms, lengths, labels)
    >>> logits = model(batch.waveforms, batch.lengths)
"""
from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

from ..cards import AudioInput
from ..errors import InvalidArgumentError, ZooError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif")


class AudioReadError(ZooError, OSError):
    """An audio file could not be read."""


def read_audio(path: str | os.PathLike[str]) -> tuple[torch.Tensor, int]:
    """Read a file as float32 in [-1, 1]; returns ``(waveform [channels, samples], sample_rate)``.

    A file holding NaN or infinite samples (possible in float WAV files) is refused: one such
    sample turns a model's loss and weights into NaN.
    """
    import numpy as np
    import soundfile

    try:
        data, sample_rate = soundfile.read(os.fspath(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:  # LibsndfileError is a RuntimeError
        raise AudioReadError(f"cannot read audio file {os.fspath(path)!r}: {exc}. "
                             f"Supported: WAV, FLAC, OGG (anything libsndfile reads).") from exc
    finite = np.isfinite(data)
    if not finite.all():
        raise AudioReadError(f"audio file {os.fspath(path)!r} has {int(finite.size - finite.sum())} NaN or infinite "
                             "sample(s): export it again from its source, or remove it")
    return torch.from_numpy(data.T.copy()), int(sample_rate)


def to_mono(waveform: torch.Tensor) -> torch.Tensor:
    """Average the channels of a ``[channels, samples]`` waveform; a 1-D waveform is returned as is."""
    if waveform.dim() == 1:
        return waveform
    if waveform.dim() != 2:
        raise InvalidArgumentError(f"expected a waveform of shape [channels, samples], got {tuple(waveform.shape)}")
    return waveform.mean(dim=0)


def resample(waveform: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample along the last axis (band-limited sinc interpolation); a no-op at equal rates."""
    if orig_rate == new_rate:
        return waveform
    import torchaudio.functional as AF

    resampled: torch.Tensor = AF.resample(waveform, int(orig_rate), int(new_rate))
    return resampled


def pad_or_crop(waveform: torch.Tensor, num_samples: int, *, train: bool = False,
                generator: random.Random | None = None) -> torch.Tensor:
    """Cut or zero-pad the last axis to `num_samples`.

    Evaluation crops the center; training crops at a random offset (from `generator`
    when given, for reproducible runs). Padding is always at the end, so a clip's
    `length` marks where real audio stops.
    """
    length = waveform.shape[-1]
    if length > num_samples:
        excess = length - num_samples
        start = (generator or random).randint(0, excess) if train else excess // 2
        return waveform[..., start:start + num_samples]
    if length < num_samples:
        return torch.nn.functional.pad(waveform, (0, num_samples - length))
    return waveform


def _spec(spec: AudioInput | int) -> AudioInput:
    if isinstance(spec, AudioInput):
        return spec
    if isinstance(spec, int) and not isinstance(spec, bool):
        return AudioInput(sample_rate=spec)
    raise InvalidArgumentError(f"expected a zoo.AudioInput or a sample rate in Hz, got {spec!r}")


def time_shift(waveform: torch.Tensor, max_samples: int, *, generator: random.Random | None = None) -> torch.Tensor:
    """Shift the last axis by a random amount in ``[-max_samples, max_samples]``, filling with zeros."""
    shift = (generator or random).randint(-max_samples, max_samples) if max_samples > 0 else 0
    if shift == 0:
        return waveform
    out = torch.zeros_like(waveform)
    if shift > 0:
        out[..., shift:] = waveform[..., :-shift]
    else:
        out[..., :shift] = waveform[..., -shift:]
    return out


def prepare_audio(waveform: torch.Tensor, sample_rate: int, spec: AudioInput | int, *, train: bool = False,
                  clip_seconds: float | None = None, generator: random.Random | None = None,
                  shift_fraction: float = 0.1) -> torch.Tensor:
    """Mix to mono (if the spec asks), resample to the spec's rate, pad/crop to its clip length.

    Returns ``[samples]`` for mono specs, ``[channels, samples]`` otherwise. `clip_seconds`
    overrides the spec's; with neither, the clip keeps its length. For training, fixed-length
    clips are also shifted in time by up to `shift_fraction` of their length (zero-filled),
    the usual augmentation for keyword spotting; 0 turns it off.
    """
    spec = _spec(spec)
    if spec.mono:
        waveform = to_mono(waveform)
    waveform = resample(waveform, sample_rate, spec.sample_rate)
    seconds = clip_seconds if clip_seconds is not None else spec.clip_seconds
    if seconds is not None:
        samples = int(round(seconds * spec.sample_rate))
        waveform = pad_or_crop(waveform, samples, train=train, generator=generator)
        if train:
            waveform = time_shift(waveform, int(shift_fraction * samples), generator=generator)
    return waveform.contiguous()


def load_audio(path: str | os.PathLike[str], spec: AudioInput | int, *, train: bool = False,
               clip_seconds: float | None = None, generator: random.Random | None = None,
               shift_fraction: float = 0.1) -> torch.Tensor:
    """Read a file and prepare it as the spec (a card's `input`) says; see `prepare_audio`."""
    waveform, rate = read_audio(path)
    return prepare_audio(waveform, rate, spec, train=train, clip_seconds=clip_seconds, generator=generator,
                         shift_fraction=shift_fraction)


class AudioTransform:
    """A picklable callable: path -> prepared waveform, for dataset readers (like an image transform)."""

    def __init__(self, spec: AudioInput | int, *, train: bool = False, clip_seconds: float | None = None,
                 seed: int | None = None, shift_fraction: float = 0.1):
        self.spec = _spec(spec)
        self.train = train
        self.clip_seconds = clip_seconds
        self.shift_fraction = shift_fraction
        self.generator = random.Random(seed) if seed is not None else None

    def __call__(self, path: str | os.PathLike[str]) -> torch.Tensor:
        return load_audio(path, self.spec, train=self.train, clip_seconds=self.clip_seconds, generator=self.generator,
                          shift_fraction=self.shift_fraction)

    def __repr__(self) -> str:
        return (f"AudioTransform(sample_rate={self.spec.sample_rate}, mono={self.spec.mono}, "
                f"clip_seconds={self.clip_seconds or self.spec.clip_seconds}, train={self.train})")


def audio_transform(spec: AudioInput | int, *, train: bool = False, clip_seconds: float | None = None,
                    seed: int | None = None, shift_fraction: float = 0.1) -> AudioTransform:
    """The path -> waveform transform for a card's audio input (random crops and shifts when `train`)."""
    return AudioTransform(spec, train=train, clip_seconds=clip_seconds, seed=seed, shift_fraction=shift_fraction)


class AudioBatch(NamedTuple):
    """A padded batch: ``waveforms [B, T]`` (or ``[B, C, T]``), ``lengths [B]`` and ``labels``."""

    waveforms: torch.Tensor
    lengths: torch.Tensor
    labels: Any

    @property
    def mask(self) -> torch.Tensor:
        """``[B, T]`` booleans, True where a sample is real audio (not padding)."""
        return lengths_to_mask(self.lengths, self.waveforms.shape[-1])


def lengths_to_mask(lengths: torch.Tensor, max_length: int) -> torch.Tensor:
    """``[B]`` lengths -> ``[B, max_length]`` booleans (True on valid positions)."""
    return torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]


def collate_audio(batch: Sequence[Any], *, pad_value: float = 0.0) -> AudioBatch:
    """Batch clips of different lengths by zero-padding at the end.

    Items are waveforms or ``(waveform, label)`` pairs. Integer labels become a
    ``LongTensor``, float labels a float tensor, anything else (text for speech
    recognition) a list; without labels `labels` is None.
    """
    if not batch:
        raise InvalidArgumentError("collate_audio needs at least one clip")
    pairs = [item if isinstance(item, (tuple, list)) else (item, None) for item in batch]
    waves = [torch.as_tensor(wave) for wave, *_ in pairs]
    labels = [rest[0] if rest else None for _, *rest in pairs]
    leading = {w.shape[:-1] for w in waves}
    if len(leading) != 1:
        raise InvalidArgumentError(f"clips in a batch must have the same channels, got shapes "
                                   f"{sorted(tuple(w.shape) for w in waves)}; mix them to mono first")
    lengths = torch.tensor([w.shape[-1] for w in waves], dtype=torch.long)
    out = waves[0].new_full((len(waves), *waves[0].shape[:-1], int(lengths.max())), pad_value)
    for i, wave in enumerate(waves):
        out[i, ..., : wave.shape[-1]] = wave
    return AudioBatch(out, lengths, _collate_labels(labels))


def _collate_labels(labels: list[Any]) -> Any:
    if all(label is None for label in labels):
        return None
    if all(isinstance(label, int) and not isinstance(label, bool) for label in labels):
        return torch.tensor(labels, dtype=torch.long)
    if all(isinstance(label, float) for label in labels):
        return torch.tensor(labels, dtype=torch.float32)
    if all(isinstance(label, torch.Tensor) and label.dim() == 0 for label in labels):
        return torch.stack(labels)
    return list(labels)


def is_audio_file(path: str | os.PathLike[str]) -> bool:
    """Whether a file name has an audio extension zoo reads."""
    return os.fspath(path).lower().endswith(AUDIO_EXTENSIONS)
