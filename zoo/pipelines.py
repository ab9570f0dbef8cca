"""One-call inference: ``zoo.pipeline(name_or_path)`` and the `Pipeline` it returns.

    >>> classify = zoo.pipeline("resnet50")
    >>> classify("cat.jpg")                      # [{"label": "tabby", "score": 0.71}, ...]
    >>> classify(["a.jpg", pil_image], top_k=1)  # one list of predictions per input
    >>> zoo.pipeline("wav2vec2_base_ctc")({"raw": waveform, "sampling_rate": 44100})  # {"text": ...}

Results are shaped like Hugging Face pipelines': classification gives ``top_k`` ``{"label", "score"}``
dicts, best first; token classification a list of ``{"entity", "score", "index", "word", "start", "end"}``
per text; speech recognition ``{"text": ...}``; feature extraction a numpy array per input
(``[features]`` for pooled models, ``[tokens or frames, features]`` otherwise). One input gives one
result, a list (or a folder) gives a list. Inputs are prepared as the model's card says (the image
transform, the audio sample rate and clip length, the text tokenizer), in batches of `batch_size`. Texts
go as `zoo.data.text.infer` runs them: tokenized once, sorted by length and cut into batches of at most
`max_tokens` padded tokens (and `batch_size` texts), so short texts share large batches and little padding
is computed; results come back in input order.

This module imports torch; ``import zoo`` reaches it only when ``zoo.pipeline`` is first used.
(It is named ``pipelines``, as in transformers, so that the module does not shadow the function.)
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import torch
from PIL import Image
from torch import nn

from .cards import AudioInput, ModelCard, card_labels, card_of
from .data import files_under
from .data.audio import AUDIO_EXTENSIONS, collate_audio, load_audio, prepare_audio
from .data.fast_images import load_image
from .data.folders import IMAGE_EXTENSIONS
from .data.images import image_input, image_transform
from .data.text import DEFAULT_MAX_TOKENS, budget_batches, tokenizer_for
from .errors import DataError, InvalidArgumentError
from .factory import create
from .names import is_saved_name, model_source
from .speed import SpeedChoices, autocast, choose

Batch: TypeAlias = "tuple[torch.Tensor, ...] | dict[str, torch.Tensor]"

EXTENSIONS = {"image": IMAGE_EXTENSIONS, "audio": AUDIO_EXTENSIONS}  # what a folder is searched for
SPEECH_RECOGNITION = "automatic-speech-recognition"
FEATURE_EXTRACTION = "feature-extraction"
TOKEN_CLASSIFICATION = "token-classification"
IGNORED_ENTITIES = frozenset({"O"})  # token labels a token-classification result leaves out, as in transformers
DEFAULT_TOP_K = 5


def load_model(name: str) -> nn.Module:
    """The model to run: a saved one (a folder, ``local-dir:``, ``hf-hub:``) as it was saved, a registered one
    with its weights (from the cache when they are there, so offline)."""
    source = model_source(name)
    return create(source) if is_saved_name(source) else create(source, pretrained=True)


def pipeline(model: str | nn.Module, *, batch_size: int | None = None, top_k: int = DEFAULT_TOP_K,
             device: str | torch.device | None = None, precision: str = "auto", threads: int | None = None,
             max_tokens: int = DEFAULT_MAX_TOKENS) -> Pipeline:
    """A callable that runs `model` (a name, a saved model's folder, a folder `zoo.export` wrote as ONNX, run
    through onnxruntime, or a module `zoo.create` made) on raw inputs.

    Images: file paths, folders (their image files at any depth, sorted), PIL images, ``[C, H, W]``
    tensors or ``[H, W, C]`` arrays. Texts: strings. Audio: file paths, folders, waveforms (arrays or
    tensors, ``[samples]`` or ``[channels, samples]``) at `sampling_rate` (a call option; the card's rate
    when not given), or ``{"raw" or "array": waveform, "sampling_rate": rate}`` as in Hugging Face.

    Threads, batch size, precision and memory format are chosen for the machine (`zoo.speed`; ``auto``
    precision is fp32 on a CPU) unless given; `Pipeline.speed` holds the choices and `Pipeline.speed.line()`
    says them in one line. Text batches hold at most `max_tokens` padded tokens (rows times the longest row;
    a longer text runs alone) besides at most `batch_size` texts.
    """
    module = _exported_or_loaded(model) if isinstance(model, str) else model
    if not isinstance(module, nn.Module):
        raise InvalidArgumentError(f"zoo.pipeline takes a model name, a folder or a model, got {model!r}")
    return Pipeline(module, batch_size=batch_size, top_k=top_k, device=device, precision=precision, threads=threads,
                    max_tokens=max_tokens)


def _exported_or_loaded(name: str) -> nn.Module:
    """A folder `zoo.export` wrote as ONNX runs through onnxruntime; anything else loads as `load_model` does."""
    from .exports.serving import is_export_folder  # reason: zoo.exports imports the exporters only when used

    if is_export_folder(name):
        from .exports.runtime import load_onnx_model  # reason: onnxruntime is optional, needed for exports only

        return load_onnx_model(name)
    return load_model(name)


class Pipeline:
    """`model` with its card's preprocessing and postprocessing; call it on one input or a list of them."""

    def __init__(self, model: nn.Module, *, batch_size: int | None = None, top_k: int = DEFAULT_TOP_K,
                 device: str | torch.device | None = None, precision: str = "auto",
                 threads: int | None = None, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.card: ModelCard = card_of(model)
        self.task = self.card.task
        self.modality = self.card.modality
        if self.modality not in _PREPARE:
            raise InvalidArgumentError(f"zoo.pipeline runs image, text and audio models; {self.card.name!r} is a "
                                       f"{self.modality} model")
        self.model = model.to(device) if device is not None else model
        self.model.eval()
        self.labels = card_labels(self.card)
        if batch_size is not None:
            _positive(batch_size, "batch_size")
        self.speed: SpeedChoices = choose(self.model, threads=threads, batch_size=batch_size, precision=precision,
                                          channels_last=None if self.modality == "image" else False)
        if self.speed.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.batch_size = self.speed.batch_size
        self.top_k = _positive(top_k, "top_k")
        self.max_tokens = _positive(max_tokens, "max_tokens")

    def __repr__(self) -> str:
        return f"Pipeline({self.card.name!r}, task={self.task!r}, batch_size={self.batch_size}, " \
               f"precision={self.speed.precision!r})"

    def __call__(self, inputs: Any, *, top_k: int | None = None, batch_size: int | None = None,
                 sampling_rate: int | None = None) -> Any:
        """Results for `inputs`: one result for one input, a list of them for a list (or a folder)."""
        single, items = self.items(inputs, sampling_rate=sampling_rate)
        k = _positive(top_k if top_k is not None else self.top_k, "top_k")
        size = _positive(batch_size if batch_size is not None else self.batch_size, "batch_size")
        if self.modality == "text":
            results = self._run_texts(items, top_k=k, batch_size=size)
        else:
            results = []
            for start in range(0, len(items), size):
                results += self.run(items[start:start + size], top_k=k)
        return results[0] if single else results

    def items(self, inputs: Any, *, sampling_rate: int | None = None) -> tuple[bool, list[Any]]:
        """Whether `inputs` is one input, and the inputs one by one (a folder's files in place of the folder)."""
        listed = isinstance(inputs, (list, tuple)) and not _is_rate_pair(inputs, self.modality)
        given = list(inputs) if listed else [inputs]
        if not given:
            raise InvalidArgumentError("zoo.pipeline was given an empty list of inputs")
        items: list[Any] = []
        folder = False
        for item in given:
            if self.modality != "text" and isinstance(item, (str, os.PathLike)) and Path(item).is_dir():
                items += folder_files(os.fspath(item), self.modality)
                folder = True
            elif self.modality == "audio" and not isinstance(item, (str, os.PathLike)):
                items.append(_waveform_pair(item, sampling_rate))
            else:
                items.append(item)
        return not listed and not folder, items

    def run(self, items: Sequence[Any], *, top_k: int = DEFAULT_TOP_K) -> list[Any]:
        """The results of one batch of `items` (as `items` gives them), in order."""
        return self._results(_PREPARE[self.modality](self.model, items), items, top_k=top_k)

    def _run_texts(self, texts: Sequence[Any], *, top_k: int, batch_size: int) -> list[Any]:
        """The results for `texts` in their order, run in length-sorted batches within the token budget."""
        _check_texts(texts)
        results: list[Any] = [None] * len(texts)
        for index, batch in budget_batches(tokenizer_for(self.model), texts, max_tokens=self.max_tokens,
                                           batch_size=batch_size):
            for i, result in zip(index, self._results(batch, [texts[i] for i in index], top_k=top_k)):
                results[i] = result
        return results

    def _results(self, batch: Batch, items: Sequence[Any], *, top_k: int) -> list[Any]:
        """The results of the prepared `batch` of `items`, in order."""
        param = next(self.model.parameters(), None)
        if param is not None:
            batch = _to(batch, param.device, channels_last=self.speed.channels_last)
            amp = autocast(self.speed.precision, param.device)
        else:
            amp = autocast("fp32", torch.device("cpu"))
        with torch.inference_mode(), amp:
            if self.task == SPEECH_RECOGNITION:
                return [{"text": text} for text in _transcribe(self.model, batch)]
            if self.task == FEATURE_EXTRACTION:
                return _features(self.model, batch)
            output = self.model(**batch) if isinstance(batch, dict) else self.model(*batch)
        logits = output if isinstance(output, torch.Tensor) else output[0]
        if self.task == TOKEN_CLASSIFICATION and logits.dim() == 3:
            return [self._entities(text, row) for text, row in zip(items, logits.float().softmax(dim=-1).cpu())]
        if logits.dim() != 2:
            raise InvalidArgumentError(f"zoo.pipeline classifies with models that give one row of scores per input; "
                                       f"{self.card.name!r} ({self.task}) gives outputs of shape "
                                       f"{tuple(logits.shape)}")
        probabilities = logits.float().softmax(dim=-1).cpu()
        top = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
        return [[{"label": self._label(i), "score": s} for s, i in zip(scores, indices)]
                for scores, indices in zip(top.values.tolist(), top.indices.tolist())]

    def _entities(self, text: str, probabilities: torch.Tensor) -> list[dict[str, Any]]:
        """Each token's best label, as transformers' token-classification pipeline gives them (no aggregation):
        ``{"entity", "score", "index", "word", "start", "end"}``, special tokens and ``O`` left out."""
        encoding = tokenizer_for(self.model).tokenizer.encode(text)  # the same tokens as in the batch, unpadded
        scores, indices = probabilities[:len(encoding.ids)].max(dim=-1)
        entities = []
        for position, (score, index) in enumerate(zip(scores.tolist(), indices.tolist())):
            label = self._label(index)
            if encoding.special_tokens_mask[position] or label in IGNORED_ENTITIES:
                continue
            start, end = encoding.offsets[position]
            entities.append({"entity": label, "score": score, "index": position, "word": encoding.tokens[position],
                             "start": start, "end": end})
        return entities

    def _label(self, index: int) -> str:
        return self.labels[index] if self.labels and index < len(self.labels) else str(index)


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be a whole number of 1 or more, got {value!r}")
    return value


def folder_files(given: str, modality: str) -> list[str]:
    """A folder's files with the modality's extensions, at any depth, sorted."""
    extensions = EXTENSIONS[modality]
    found = sorted(str(p) for p in files_under(Path(given).expanduser(), extensions))
    if not found:
        raise DataError(f"folder {given} holds no {modality} files (looked for {', '.join(extensions)} at any depth)")
    return found


def _is_rate_pair(inputs: Any, modality: str) -> bool:
    """``(waveform, sampling_rate)``: one audio input written as a pair, not a list of two."""
    return (modality == "audio" and isinstance(inputs, tuple) and len(inputs) == 2
            and isinstance(inputs[1], int) and not isinstance(inputs[0], (str, os.PathLike)))


def _waveform_pair(item: Any, sampling_rate: int | None) -> tuple[torch.Tensor, int | None]:
    """A waveform and its rate (None: the card's) from an array, a tensor, a pair or a Hugging Face dict."""
    if isinstance(item, dict):
        wave = item.get("raw", item.get("array"))
        rate = item.get("sampling_rate", sampling_rate)
        if wave is None:
            raise InvalidArgumentError(f"an audio dict holds its waveform as 'raw' or 'array', got keys {sorted(item)}")
    elif isinstance(item, tuple) and len(item) == 2:
        wave, rate = item
    else:
        wave, rate = item, sampling_rate
    if not isinstance(wave, (np.ndarray, torch.Tensor)):
        raise InvalidArgumentError(f"an audio input is a file, a folder or a waveform (array or tensor), "
                                   f"got {type(wave).__name__}")
    tensor = torch.as_tensor(np.asarray(wave, dtype=np.float32) if isinstance(wave, np.ndarray) else wave).float()
    if tensor.dim() not in (1, 2):
        raise InvalidArgumentError(f"a waveform is [samples] or [channels, samples], got shape {tuple(tensor.shape)}")
    return (tensor if tensor.dim() == 2 else tensor.unsqueeze(0)), rate


def _check_texts(texts: Sequence[Any]) -> None:
    bad = sorted({type(t).__name__ for t in texts if not isinstance(t, str)})
    if bad:
        raise InvalidArgumentError(f"a text model takes strings, got {', '.join(bad)}")


def _texts(model: nn.Module, texts: Sequence[Any]) -> Batch:
    _check_texts(texts)
    return tokenizer_for(model).encode_batch(list(texts))


def _images(model: nn.Module, images: Sequence[Any]) -> Batch:
    transform = image_transform(model)
    spec = image_input(model)
    tensors = []
    for image in images:
        if isinstance(image, (str, os.PathLike)):
            # Files take the fast path (large JPEGs decoded at a reduced scale, resized as 8-bit pixels), which
            # gives the transform's tensor within the tolerance docs/vision.md states; converted to RGB as the
            # training data was.
            tensors.append(load_image(image, spec))
            continue
        if not isinstance(image, (Image.Image, np.ndarray, torch.Tensor)):
            raise InvalidArgumentError(f"an image input is a file, a folder, a PIL image, an array or a tensor, "
                                       f"got {type(image).__name__}")
        tensors.append(transform(image))
    return (torch.stack(tensors),)


def _audio(model: nn.Module, clips: Sequence[Any]) -> Batch:
    card = card_of(model)
    spec = card.input_for()
    if not isinstance(spec, AudioInput):
        raise InvalidArgumentError(f"model {card.name!r} declares no audio input (sample rate) in its card")
    waves = []
    for clip in clips:
        if isinstance(clip, (str, os.PathLike)):
            if not Path(clip).is_file():
                raise DataError(f"no such file or folder: {os.fspath(clip)}")
            waves.append(load_audio(clip, spec))
        else:
            wave, rate = clip
            waves.append(prepare_audio(wave, rate or spec.sample_rate, spec))
    batch = collate_audio(waves)
    return batch.waveforms, batch.lengths


_PREPARE: dict[str, Callable[[nn.Module, Sequence[Any]], Batch]] = {"text": _texts, "image": _images, "audio": _audio}


def _to(batch: Batch, device: torch.device, *, channels_last: bool = False) -> Batch:
    if isinstance(batch, dict):
        return {k: v.to(device) for k, v in batch.items()}
    moved = tuple(t.to(device) for t in batch)
    if channels_last:
        moved = tuple(t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t for t in moved)
    return moved


def _transcribe(model: nn.Module, batch: Batch) -> list[str]:
    transcribe = getattr(model, "transcribe", None)
    if not callable(transcribe) or isinstance(batch, dict):
        raise InvalidArgumentError(f"{card_of(model).name!r} is a speech recognition model without a "
                                   "transcribe(waveforms, lengths) method")
    return list(transcribe(*batch))


def _features(model: nn.Module, batch: Batch) -> list[np.ndarray]:
    """One array per input: pooled features as they are, per-token or per-frame ones without the padding."""
    encode = getattr(model, "encode", None)
    if isinstance(batch, tuple) and len(batch) == 2 and callable(encode):  # audio encoders say their frame counts
        hidden, frames = encode(*batch)
        keep = frames.tolist() if frames is not None else [hidden.shape[1]] * hidden.shape[0]
        return [hidden[i, :int(n)].float().cpu().numpy() for i, n in enumerate(keep)]
    output = model(**batch) if isinstance(batch, dict) else model(*batch)
    features = output if isinstance(output, torch.Tensor) else output[0]
    if features.dim() == 3 and isinstance(batch, dict) and "attention_mask" in batch:
        mask = batch["attention_mask"].bool()
        return [features[i, mask[i]].float().cpu().numpy() for i in range(features.shape[0])]
    return [row.float().cpu().numpy() for row in features]
