"""zoo.data says what it did: no one-class training data, no silent classes, no bad pixels or samples fed to a model."""
from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
import pytest
import soundfile
import torch
import trainer_models as tm
from PIL import Image

import zoo
import zoo.data
from zoo.cli import main
from zoo.data.audio import AudioReadError, read_audio
from zoo.data.images import image_transform, read_image, to_rgb
from zoo.data.tables import TextTable
from zoo.errors import DataError


@pytest.fixture(autouse=True)
def cards():
    with tm.trainer_cards_on_one_thread():
        yield


@pytest.fixture
def conv():
    return zoo.create("trainer_conv", num_classes=3)


def _noise(seed: int = 0, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3)).astype("uint8")


def _truncated_jpeg(path):
    """A JPEG cut in half: its header is whole, so PIL's verify() passes, but it cannot be decoded."""
    buffer = io.BytesIO()
    Image.fromarray(_noise()).save(buffer, "JPEG", quality=90)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


def _damaged_png(path):
    """A PNG whose compressed pixels are damaged but whose chunk checksum is recomputed: verify() passes."""
    buffer = io.BytesIO()
    Image.fromarray(_noise()).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4:at])[0]
    body = bytearray(data[at + 4:at + 4 + length])
    body[length // 3:length // 3 + 40] = bytes(b ^ 0xFF for b in body[length // 3:length // 3 + 40])
    data[at + 4:at + 4 + length] = body
    data[at + 4 + length:at + 8 + length] = struct.pack(">I", zlib.crc32(b"IDAT" + bytes(body)))
    path.write_bytes(bytes(data))
    return path


# ---------------------------------------------------------------------------- point 1: classes


def test_training_on_a_one_class_folder_is_refused_but_evaluating_on_it_is_allowed(tmp_path, conv):
    root = tm.write_image_folder(tmp_path / "one", classes=1, per_class=2, size=8)
    with pytest.raises(DataError, match=r"holds only the class 'class_0'.*at least two classes.*<class name>"):
        zoo.data.dataset_for(conv, root, train=True)
    with pytest.raises(DataError, match="at least two classes"):
        zoo.data.class_names(root, train=True)
    assert zoo.data.class_names(root) == ["class_0"]
    assert len(zoo.data.dataset_for(conv, root, classes=["class_0", "class_1"])) == 2  # a validation split


def test_training_data_whose_given_classes_have_files_of_only_one_is_refused(tmp_path, conv):
    root = tm.write_image_folder(tmp_path / "one", classes=1, per_class=2, size=8)
    with pytest.raises(DataError, match="at least two classes"):
        zoo.data.dataset_for(conv, root, train=True, classes=["class_0", "class_1"])


def test_a_one_class_table_is_refused_for_training(tmp_path):
    data = tmp_path / "reviews.jsonl"
    data.write_text("".join(json.dumps({"text": f"fine {i}", "label": "pos"}) + "\n" for i in range(3)))
    with pytest.raises(DataError, match=r"reviews.jsonl holds only the class 'pos'.*--label-column"):
        TextTable(data, train=True)
    with pytest.raises(DataError, match="at least two classes"):
        zoo.data.class_names(data, train=True)
    assert TextTable(data).classes == ["pos"]


def test_an_empty_class_folder_is_an_error_for_validation_data_too(tmp_path, conv):
    train = zoo.data.dataset_for(conv, tm.write_image_folder(tmp_path / "train", per_class=2, size=8), train=True)
    val = tm.write_image_folder(tmp_path / "val", classes=1, per_class=2, size=8)
    (val / "class_1").mkdir()
    with pytest.raises(DataError, match=r"class folder .*class_1 has no images"):
        zoo.data.dataset_for(conv, val, classes=train.classes)
    with pytest.raises(DataError, match=r"class folder .*class_1 is empty"):
        zoo.data.class_names(val)


def test_a_class_whose_files_are_all_skipped_as_unreadable_is_an_error(tmp_path, conv):
    root = tm.write_image_folder(tmp_path / "train", per_class=2, size=8)
    for path in (root / "class_1").iterdir():
        path.write_bytes(b"not an image")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"), \
            pytest.raises(DataError, match=r"no readable images left in .*class_1"):
        zoo.data.dataset_for(conv, root, skip_bad=True)


def test_finetune_command_refuses_one_class_or_empty_class_data_in_one_line(tmp_path, capsys):
    one = tm.write_image_folder(tmp_path / "one", classes=1, per_class=2, size=8)
    out = str(tmp_path / "model")
    command = ["finetune", "trainer_conv", "--epochs", "1", "--batch-size", "2", "--out", out, "--quiet"]
    assert main(command + ["--data", str(one)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "at least two classes" in err
    (one / "class_1").mkdir()
    assert main(command + ["--data", str(one)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "class_1 is empty" in err


# ---------------------------------------------------------------------------- point 2: labels


def test_a_number_label_is_one_class_however_it_is_written(tmp_path):
    jsonl = tmp_path / "t.jsonl"
    labels = [1, 1.0, "1", 2, "2.0", 10]
    jsonl.write_text("".join(json.dumps({"text": f"t{i}", "label": label}) + "\n" for i, label in enumerate(labels)))
    table = TextTable(jsonl)
    assert table.classes == ["1", "2", "10"] and table.targets == [0, 0, 0, 1, 1, 2]
    csv_file = tmp_path / "t.csv"
    csv_file.write_text("text,label\na,1\nb,1.0\nc,01\nd,0\n")
    assert TextTable(csv_file).classes == ["0", "1"] and TextTable(csv_file).targets == [1, 1, 1, 0]
    assert zoo.data.class_names(csv_file) == ["0", "1"]


def test_a_label_that_is_no_name_or_number_is_refused_naming_its_line(tmp_path):
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"text": "a", "label": "x"}\n\n{"text": "b", "label": ["x"]}\n')
    with pytest.raises(DataError, match=r"t.jsonl, line 3: needs a text .* and a label \(a name or a number\)"):
        TextTable(jsonl)


# ---------------------------------------------------------------------------- point 3: CSV fields


def test_a_csv_row_with_more_or_fewer_fields_than_the_header_is_refused_naming_its_line(tmp_path):
    extra = tmp_path / "extra.csv"
    extra.write_text('text,label\n"fine, really",pos\ngood, really good,pos\n')
    with pytest.raises(DataError, match=r"extra.csv, line 3: 3 fields where the header has 2 .*double quotes"):
        TextTable(extra)
    fewer = tmp_path / "fewer.tsv"
    fewer.write_text('text\tlabel\n"two\nlines"\tpos\n\nalone\n')
    with pytest.raises(DataError, match=r"fewer.tsv, line 5: 1 fields where the header has 2"):
        TextTable(fewer)


# ---------------------------------------------------------------------------- point 4: images that do not decode


@pytest.mark.parametrize("write", [_truncated_jpeg, _damaged_png], ids=["truncated-jpeg", "damaged-png"])
def test_an_image_that_passes_verify_but_does_not_decode_is_skipped_or_named(tmp_path, conv, write):
    root = tm.write_image_folder(tmp_path / "train", per_class=2, size=8)
    bad = write(root / "class_1" / ("bad.jpg" if write is _truncated_jpeg else "bad.png"))
    with pytest.warns(UserWarning, match=f"skipped 1 unreadable file.*{bad.name}"):
        kept = zoo.data.dataset_for(conv, root, train=True, skip_bad=True)
    assert len(kept) == 6 and bad not in [path for path, _ in kept.samples]
    data = zoo.data.dataset_for(conv, root)
    with pytest.raises(DataError, match=f"{bad.name}.*skip_bad=True"):
        data[[path for path, _ in data.samples].index(bad)]


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


# ---------------------------------------------------------------------------- point 6: 16-bit and float pixels


def _gradient(high: float, dtype) -> np.ndarray:
    return np.linspace(0, high, 24 * 24).reshape(24, 24).astype(dtype)


def _same_input_as(conv, path, expected_grey: np.ndarray) -> bool:
    """The dataset's tensor for `path` equals the one for an 8-bit RGB image of `expected_grey`."""
    data = zoo.data.dataset_for(conv, path.parent.parent)
    got = data[[p for p, _ in data.samples].index(path)][0]
    return torch.equal(got, image_transform(conv)(Image.fromarray(expected_grey).convert("RGB")))


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped_to_white(tmp_path, conv):
    values = _gradient(65535, np.uint16)
    path = tmp_path / "data" / "a" / "grey16.png"
    path.parent.mkdir(parents=True)
    Image.fromarray(values).save(path)
    expected = np.rint(values / 257).astype(np.uint8)
    assert Image.open(path).mode == "I;16"
    assert np.array_equal(np.asarray(read_image(path)), np.stack([expected] * 3, axis=-1))
    assert _same_input_as(conv, path, expected)
    big_endian = Image.frombytes("I;16B", (24, 24), values.astype(">u2").tobytes())
    assert np.array_equal(np.asarray(to_rgb(big_endian))[..., 0], expected)


def test_a_16_bit_pgm_opened_as_mode_i_is_scaled_to_8_bits(tmp_path):
    values = _gradient(65535, np.uint16)
    path = tmp_path / "grey16.pgm"
    path.write_bytes(b"P5\n24 24\n65535\n" + values.astype(">u2").tobytes())
    assert Image.open(path).mode == "I"
    assert np.array_equal(np.asarray(read_image(path))[..., 1], np.rint(values / 257).astype(np.uint8))


def test_a_float_tiff_in_0_1_is_scaled_to_8_bits(tmp_path, conv):
    values = _gradient(1.0, np.float32)
    path = tmp_path / "data" / "a" / "float.tif"
    path.parent.mkdir(parents=True)
    Image.fromarray(values).save(path)
    expected = np.rint(values * 255).astype(np.uint8)
    assert Image.open(path).mode == "F"
    assert np.array_equal(np.asarray(read_image(path)), np.stack([expected] * 3, axis=-1))
    assert _same_input_as(conv, path, expected)


def test_a_float_tiff_outside_0_1_is_refused_naming_the_file_or_skipped(tmp_path, conv):
    root = tm.write_image_folder(tmp_path / "train", per_class=2, size=8)
    bad = root / "class_0" / "depth.tif"
    Image.fromarray(_gradient(40.0, np.float32)).save(bad)
    with pytest.raises(DataError,
                       match=r"depth.tif has float32 pixels outside \[0.0, 1.0\] \(values from 0.0 to 40.0\)"):
        read_image(bad)
    with pytest.raises(DataError, match="depth.tif"):
        image_transform(conv)(Image.open(bad))
    with pytest.warns(UserWarning, match="skipped 1 unreadable file.*depth.tif"):
        assert len(zoo.data.dataset_for(conv, root, skip_bad=True)) == 6
