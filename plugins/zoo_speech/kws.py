"""Keyword spotting: a log-mel front end (torchaudio transforms) and a compact CNN.

Waveforms ``[B, T]`` at 16 kHz -> 40 log-mel bands every 10 ms -> four 3x3 conv blocks
(BatchNorm, ReLU, 2x2 max pooling after the first three) -> global average -> `classifier`.
Width 32 has about 240k parameters and trains on a CPU in minutes.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

from zoo import InvalidArgumentError


class LogMel(nn.Module):
    """Log-mel spectrogram ``[B, T] -> [B, 1, n_mels, frames]``; no trainable parameters."""

    def __init__(self, sample_rate: int = 16000, n_mels: int = 40, win_ms: float = 25.0, hop_ms: float = 10.0):
        super().__init__()
        from torchaudio.transforms import MelSpectrogram

        win = int(round(sample_rate * win_ms / 1000))
        self.mel = MelSpectrogram(sample_rate=sample_rate, n_fft=win, win_length=win,
                                  hop_length=int(round(sample_rate * hop_ms / 1000)), n_mels=n_mels,
                                  f_min=20.0, f_max=sample_rate / 2, power=2.0)

    def forward(self, waveforms: Tensor) -> Tensor:
        with torch.autocast(waveforms.device.type, enabled=False):  # the FFT wants fp32
            return torch.log(self.mel(waveforms.float()) + 1e-6).unsqueeze(1)


def _block(cin: int, cout: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                               nn.ReLU(inplace=True)]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class KeywordSpotter(nn.Module):
    """Log-mel + CNN keyword classifier; `forward(waveforms, lengths=None) -> logits [B, classes]`."""

    def __init__(self, num_classes: int = 10, width: int = 32, n_mels: int = 40, sample_rate: int = 16000,
                 dropout: float = 0.1):
        super().__init__()
        self.frontend = LogMel(sample_rate=sample_rate, n_mels=n_mels)
        self.input_norm = nn.BatchNorm2d(1)
        self.blocks = nn.Sequential(_block(1, width, True), _block(width, 2 * width, True),
                                    _block(2 * width, 4 * width, True), _block(4 * width, 4 * width, False))
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout))
        self.num_features = 4 * width
        self.classifier = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, waveforms: Tensor, lengths: Tensor | None = None) -> Tensor:
        # Clips are zero-padded to a fixed length; silence is part of what the CNN learns, so lengths go unused.
        if waveforms.dim() != 2:
            raise InvalidArgumentError(f"expected waveforms of shape [batch, samples], got {tuple(waveforms.shape)}")
        x = self.input_norm(self.frontend(waveforms).to(self.input_norm.weight.dtype))
        return self.classifier(self.pool(self.blocks(x)))


def build_keyword_spotter(num_classes: int = 10, width: int = 32, n_mels: int = 40, sample_rate: int = 16000,
                          dropout: float = 0.1) -> KeywordSpotter:
    return KeywordSpotter(num_classes=num_classes, width=width, n_mels=n_mels, sample_rate=sample_rate,
                          dropout=dropout)
