"""zoo.data says what it did: no one-class training data, no silent classes, no bad pixels or samples fed to a model."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile
import torch

import zoo
import zoo.data
from zoo.data.audio import AudioReadError, read_audio
from zoo.errors import DataError

import trainer_models as tm


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


# ---------------------------------------------------------------------------- point 5: audio samples


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_audio_with_nan_or_infinite_samples_is_refused_naming_the_file_or_skipped(tmp_path, value):
    root = tm.write_audio_folder(tmp_path / "clips", rate=8000, per_class=2)
    clip = np.zeros(8000, np.float32)
    clip[100] = value
    bad = root / "late" / "bad.wav"
    soundfile.write(bad, clip, 8000, subtype="FLOAT")
    with pytest.raises(AudioReadError, match=r"bad.wav' has 1 NaN or infinite sample"):
        read_audio(bad)
    model = zoo.create("trainer_audio", num_classes=2)
    data = zoo.data.dataset_for(model, root)
    with pytest.raises(DataError, match=r"bad.wav.*NaN.*skip_bad=True"):
        data[[path for path, _ in data.samples].index(bad)]
    with pytest.warns(UserWarning, match="skipped 1 unreadable file.*bad.wav"):
        kept = zoo.data.dataset_for(model, root, train=True, skip_bad=True)
    assert len(kept) == 4 and all(torch.isfinite(kept[i][0]).all() for i in range(len(kept)))
