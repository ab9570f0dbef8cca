"""Input specs from a checkpoint's own preprocessing files (JSON only): tokenizer, image processor, feature
extractor settings."""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zoo

_RESAMPLE = {0: "nearest", 1: "bicubic", 2: "bilinear", 3: "bicubic", 4: "bilinear", 5: "bicubic"}
_LIMIT = 4 * 1024 * 1024
# tokenizer_config.json says this (10**30) when a tokenizer has no length limit of its own.
_UNLIMITED = 10**9


def read_json(directory: Path | None, name: str) -> dict[str, Any]:
    """`name` in `directory` as a JSON object, or {} when absent or not an object."""
    if directory is None:
        return {}
    path = directory / name
    try:
        if not path.is_file() or path.stat().st_size > _LIMIT:
            return {}
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def text_input(config: Mapping[str, Any], directory: Path | None, tokenizer: str | None) -> zoo.TextInput:
    tokenizer_config = read_json(directory, "tokenizer_config.json")
    limit = tokenizer_config.get("model_max_length")
    if not isinstance(limit, int) or limit >= _UNLIMITED:
        positions = config.get("max_position_embeddings")
        limit = positions if isinstance(positions, int) and 0 < positions < _UNLIMITED else 512
    if config.get("model_type") in ("roberta", "xlm-roberta", "camembert") and limit == 514:
        limit = 512  # two positions are taken by the padding offset
    lowercase = bool(tokenizer_config.get("do_lower_case", False))
    return zoo.TextInput(max_length=int(limit), tokenizer=tokenizer, lowercase=lowercase)


def _side(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    if isinstance(value, Mapping):
        for key in ("shortest_edge", "height", "width"):
            if isinstance(value.get(key), int):
                return int(value[key])
    return None


def image_input(config: Mapping[str, Any], directory: Path | None) -> zoo.ImageInput:
    processor = read_json(directory, "preprocessor_config.json")
    default = config.get("image_size")
    size = _side(processor.get("crop_size")) if processor.get("do_center_crop") else None
    resize = _side(processor.get("size"))
    size = size or resize or (default if isinstance(default, int) else 224)
    resize_size = resize if resize and resize != size else None
    mean = processor.get("image_mean") or (0.5, 0.5, 0.5)
    std = processor.get("image_std") or (0.5, 0.5, 0.5)
    crop_pct = processor.get("crop_pct")
    if resize_size is None and isinstance(crop_pct, float) and 0 < crop_pct < 1:
        resize_size = math.floor(size / crop_pct)
    interpolation = _RESAMPLE.get(processor.get("resample", 2), "bilinear")
    return zoo.ImageInput(size=int(size), mean=tuple(mean), std=tuple(std), resize_size=resize_size,
                          interpolation=interpolation)


def audio_settings(config: Mapping[str, Any], directory: Path | None) -> tuple[zoo.AudioInput, dict[str, Any]]:
    """The audio spec and what the model's own front end must do (`zoo_transformers.model.audio_inputs`)."""
    extractor = read_json(directory, "preprocessor_config.json")
    rate = extractor.get("sampling_rate", 16000)
    settings: dict[str, Any] = {"sampling_rate": int(rate)}
    if config.get("model_type") == "audio-spectrogram-transformer":
        settings.update(filterbank=True, num_mel_bins=int(config.get("num_mel_bins", 128)),
                        max_length=int(config.get("max_length", 1024)),
                        mean=float(extractor.get("mean", -4.2677393)), std=float(extractor.get("std", 4.5689974)),
                        do_normalize=bool(extractor.get("do_normalize", True)))
    else:
        layer_norm = config.get("feat_extract_norm", "layer") == "layer"
        settings.update(do_normalize=bool(extractor.get("do_normalize", layer_norm)),
                        attention_mask=bool(extractor.get("return_attention_mask", layer_norm)))
        if isinstance(config.get("conv_kernel"), list) and isinstance(config.get("conv_stride"), list):
            settings.update(conv_kernel=list(config["conv_kernel"]), conv_stride=list(config["conv_stride"]))
    return zoo.AudioInput(sample_rate=int(rate)), settings
