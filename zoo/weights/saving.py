"""`save_pretrained` and `push_to_hub`: a directory that `zoo.create("local-dir:DIR")` rebuilds.

Layout (what the Hub shows as a model repo):
    config.json         {"zoo": {...}, "card": <ModelCard.to_dict()>, "num_classes": n, "labels": [...]}
    model.safetensors   the state dict (LoRA adapters merged; tied weights stored once)
    README.md           a model card with Hub metadata
    + the tokenizer and preprocessor files the weights came with, if any (known names only)

config.json records the sha256 of model.safetensors; `check_saved_weights` compares it on load,
so a file corrupted or changed after saving is refused.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import HfApi
from huggingface_hub import errors as hf_errors
from torch import nn

from .._version import __version__
from ..cards import ModelCard, card_labels, card_of
from ..errors import WeightsError
from ..files import write_bytes_atomic, write_text_atomic
from .formats import inside_folder, read_small_file, write_safetensors
from .loading import import_function
from .model_card import dataset_name, is_non_commercial, license_of, model_card, non_commercial_warning
from .sources import hub_endpoint, hub_unreachable, offline, transport_errors
from .verify import sha256_of

if TYPE_CHECKING:
    from ..finetune.lora import LoRALinear

FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
README_NAME = "README.md"
SAVED_CONFIG = "saved_config"
"""The card ``extra`` key naming ``"module:function"`` (card, labels) -> keys another library reads, written into
config.json beside zoo's (timm's ``architecture`` and ``pretrained_cfg``, so timm loads the folder too)."""
SAVED_STATE = "saved_state"
"""The card ``extra`` key naming ``"module:function"`` (card, state dict) -> the state dict in another library's
tensor names, or a string saying why that library has no class computing what the model computes. When it
renames, model.safetensors holds the other library's names, ``zoo.weights_key_map`` in config.json names the
card's `SAVED_STATE_READER` that renames them back, and the `SAVED_CONFIG` keys are written; when it refuses,
zoo's names stay, no other library's keys are written and the reason is kept as `INTERCHANGE_NOTE`."""
SAVED_STATE_READER = "saved_state_reader"
"""The card ``extra`` key naming ``"module:function"`` (card, state dict) -> zoo's names again."""
INTERCHANGE_NOTE = "interchange_note"
_OWN_FILES = (CONFIG_NAME, WEIGHTS_NAME, README_NAME)
# Files a tokenizer or preprocessor is stored in (transformers, tokenizers, sentencepiece, zoo's speech family).
SIDE_FILE_NAMES = frozenset({
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
    "vocab.json", "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.model", "sentencepiece.bpe.model",
    "source.spm", "target.spm", "preprocessor_config.json", "processor_config.json", "chat_template.json",
})
_SIDE_FILE_LIMIT = 50 * 1024 * 1024
_SHA256 = frozenset("0123456789abcdef")


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict to save: LoRA adapters folded in (without changing `model`), each tied tensor once."""
    state = dict(model.state_dict())
    lora_linear = _lora_linear()
    if lora_linear is not None:
        for name, module in model.named_modules():
            if isinstance(module, lora_linear):
                prefix = f"{name}." if name else ""
                for key in [k for k in state if k.startswith(prefix)]:
                    del state[key]
                state.update({prefix + k: v for k, v in module.merged().state_dict().items()})
    out: dict[str, torch.Tensor] = {}
    seen_views: set[tuple[int, int, tuple[int, ...], tuple[int, ...]]] = set()
    seen_storages: set[int] = set()
    for key, tensor in state.items():
        if tensor.is_meta:
            raise WeightsError(f"cannot save: {key} has no data (meta device)")
        tensor = tensor.detach().to("cpu")
        if tensor.numel():
            pointer = tensor.untyped_storage().data_ptr()
            view = (pointer, tensor.storage_offset(), tuple(tensor.shape), tensor.stride())
            if view in seen_views:
                continue  # tied to an earlier name; loading ties it again
            if pointer in seen_storages:
                tensor = tensor.clone()  # a different view of a tensor already saved: its own copy
            seen_views.add(view)
            seen_storages.add(pointer)
        out[key] = tensor.contiguous()
    return out


def _lora_linear() -> type[LoRALinear] | None:
    """zoo's LoRA layer, or None where `zoo.finetune` cannot be imported."""
    try:
        from ..finetune.lora import LoRALinear
    except ImportError:
        return None
    return LoRALinear


def build_config(card: ModelCard, labels: list[str] | None, weights_sha256: str | None = None, *,
                 key_map: str | None = None, note: str | None = None) -> dict[str, Any]:
    """zoo's config.json for `card`, with another library's keys (`SAVED_CONFIG`) beside zoo's own.

    `key_map` and `note` are what `foreign_state` found: the reader that renames the written tensors back to
    zoo's names, or why they kept zoo's names (then no other library's keys are written, and `note` is).
    """
    extra = {k: v for k, v in card.extra.items() if k != "weights_location"}
    saved = ModelCard.from_dict({**card.to_dict(), "extra": extra})
    zoo_block: dict[str, Any] = {"format": FORMAT_VERSION, "version": __version__}
    if weights_sha256 is not None:
        zoo_block["weights_sha256"] = {WEIGHTS_NAME: weights_sha256}
    config = {
        "zoo": zoo_block,
        "card": saved.to_dict(),
        "num_classes": card.num_classes,
        "labels": labels,
        "task": card.task,
    }
    if key_map is not None:
        zoo_block["weights_key_map"] = key_map
    if note is not None:
        config[INTERCHANGE_NOTE] = note
        return config
    writer = card.extra.get(SAVED_CONFIG)
    if not isinstance(writer, str):
        return config
    foreign = import_function(writer, f"config writer of {card.name}")(card, labels)
    if not isinstance(foreign, Mapping):
        raise WeightsError(f"{writer} (config writer of {card.name}) returned {type(foreign).__name__}, not a mapping")
    return {**foreign, **config}  # zoo's own keys win


def foreign_state(card: ModelCard, state: dict[str, torch.Tensor],
                  ) -> tuple[dict[str, torch.Tensor], str | None, str | None]:
    """The tensors to write, the reader that renames them back (`build_config`'s `key_map`) and the note.

    `state` renamed by the card's `SAVED_STATE` hook (with the card's `SAVED_STATE_READER`), or `state`
    itself: with the hook's reason as the note, or with neither when the card names no hook.
    """
    hook = card.extra.get(SAVED_STATE)
    if not isinstance(hook, str):
        return state, None, None
    result = import_function(hook, f"state writer of {card.name}")(card, state)
    if isinstance(result, str):
        return state, None, f"not loadable by other libraries: {result}"
    reader = card.extra.get(SAVED_STATE_READER)
    if not isinstance(result, Mapping) or not isinstance(reader, str):
        raise WeightsError(f"{hook} (state writer of {card.name}) returned {type(result).__name__}, not a mapping "
                           f"or a reason; or the card names no {SAVED_STATE_READER}")
    return dict(result), reader, None


def recorded_key_map(config: Mapping[str, Any]) -> str | None:
    """The ``"module:function"`` a zoo config names to rename its weights file to zoo's names, if any."""
    zoo_block = config.get("zoo")
    spec = zoo_block.get("weights_key_map") if isinstance(zoo_block, Mapping) else None
    if spec is not None and not isinstance(spec, str):
        raise WeightsError(f"{CONFIG_NAME} has a malformed 'zoo.weights_key_map' (expected 'module:function'); "
                           "the folder was changed after saving: save the model again")
    return spec


def recorded_sha256(config: Mapping[str, Any]) -> dict[str, str]:
    """The sha256 of each weights file a zoo ``config.json`` records (``{}`` for folders saved without them)."""
    zoo_block = config.get("zoo")
    recorded = zoo_block.get("weights_sha256") if isinstance(zoo_block, Mapping) else None
    if recorded is None:
        return {}
    if not isinstance(recorded, Mapping) or not all(
            isinstance(name, str) and isinstance(digest, str) and len(digest) == 64 and set(digest) <= _SHA256
            for name, digest in recorded.items()):
        raise WeightsError(f"{CONFIG_NAME} has a malformed 'zoo.weights_sha256' (expected file name -> sha256 hex); "
                           "the folder was changed after saving: save the model again")
    return dict(recorded)


def check_saved_weights(directory: str | Path, config: Mapping[str, Any], path: str | Path) -> None:
    """Raise `WeightsError` unless weights file `path` in `directory` has the sha256 its config records.

    Folders whose config records no sha256 (saved by other libraries, or by zoo before it
    recorded them) pass unchecked.
    """
    recorded = recorded_sha256(config)
    if not recorded:
        return
    name = Path(os.path.relpath(path, directory)).as_posix()
    expected = recorded.get(name)
    if expected is None:
        raise WeightsError(f"{Path(directory) / CONFIG_NAME} records the sha256 of {', '.join(sorted(recorded))} "
                           f"but the folder loads {name}: it was changed after saving; save the model again")
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsError(f"weights file {path} is corrupt or was changed after saving: its sha256 is {actual}, "
                           f"but {CONFIG_NAME} records {expected}; save or download the model again")


def side_file_names(card: ModelCard) -> set[str]:
    """The files besides the weights that belong to a saved model: known tokenizer and preprocessor
    files, and a tokenizer the card's input spec names by bare file name."""
    names = set(SIDE_FILE_NAMES)
    for spec in (card.input, card.input_for()):
        tokenizer = getattr(spec, "tokenizer", None)
        if tokenizer and Path(tokenizer).name == tokenizer and tokenizer not in _OWN_FILES:
            names.add(tokenizer)
    return names


def _copy_side_files(card: ModelCard, directory: Path) -> list[str]:
    """Copy the model's side files (`side_file_names`) from the folder its weights came from.

    Nothing else in that folder is copied, and a file that links out of it is skipped with a warning.
    """
    location = card.extra.get("weights_location")
    if not location:
        return []
    source = Path(location)
    if not source.is_dir() or source.resolve() == directory.resolve():
        return []  # a single weights file (URL cache, local file) has no side files of its own
    copied = []
    for name in sorted(side_file_names(card)):
        if not (source / name).is_file():
            continue
        try:
            data = read_small_file(inside_folder(source, name, what=f"model folder {source}"), _SIDE_FILE_LIMIT,
                                   what="side file")
        except WeightsError as exc:
            warnings.warn(f"not saving {name} with the model: {exc}", stacklevel=3)
            continue
        write_bytes_atomic(directory / name, data)
        copied.append(name)
    return copied


def first_nonfinite_parameter(model: nn.Module) -> str | None:
    """The name of the first parameter holding NaN or Inf, or None; one device synchronisation.

    Buffers are not checked: some models keep ``-inf`` attention masks in them on purpose.
    """
    named = [(name, p) for name, p in model.named_parameters()
             if not p.is_meta and (p.is_floating_point() or p.is_complex())]
    if not named:
        return None
    device = named[0][1].device
    finite = torch.stack([p.detach().isfinite().all().to(device) for _, p in named]).cpu()
    return None if bool(finite.all()) else named[int((~finite).nonzero()[0])][0]


def check_finite_parameters(model: nn.Module) -> None:
    """Raise `WeightsError` naming the first parameter that holds NaN or Inf."""
    name = first_nonfinite_parameter(model)
    if name is not None:
        raise WeightsError(f"cannot save: parameter {name} holds NaN or Inf values (training diverged?); "
                           "save a checkpoint from before, or train again with a lower learning rate")


def save_pretrained(model: nn.Module, directory: str | Path, *, labels: Sequence[str] | None = None,
                    repo_id: str | None = None, base_model: str | None = None,
                    datasets: str | Sequence[str] | None = None, metrics: Mapping[str, Any] | None = None,
                    metrics_split: str = "validation") -> Path:
    """Save `model` (created by zoo) so that ``zoo.create("local-dir:DIR")`` rebuilds it.

    Writes ``config.json`` (the card, class count, labels, the weights' sha256), ``model.safetensors``,
    ``README.md`` and the tokenizer files the model came with; every file goes through a temporary name,
    so an interrupted save leaves the previous files whole. A model with NaN or Inf parameters is refused.

    The README is a Hub model card (`zoo.weights.model_card`): `base_model` (default: the Hub repo the
    starting weights came from), `datasets` (names; a local folder is named by its last part, never by its
    path), `metrics` (the saved epoch's numbers, measured on `metrics_split`, as ``model-index``) and the
    starting weights' licence; a non-commercial licence is also warned about here.
    """
    card = card_of(model)
    directory = Path(directory).expanduser()
    names = list(labels) if labels is not None else card_labels(card)
    if names is not None and card.num_classes not in (None, len(names)):
        raise WeightsError(f"{len(names)} labels given, but the model has {card.num_classes} outputs")
    dataset_names = [dataset_name(d) for d in ([datasets] if isinstance(datasets, (str, os.PathLike)) else
                                               datasets or ())]
    readme = model_card(card, names, repo_id=repo_id, base_model=base_model, datasets=dataset_names,
                        metrics=metrics, metrics_split=metrics_split)
    check_finite_parameters(model)
    directory.mkdir(parents=True, exist_ok=True)
    _copy_side_files(card, directory)
    state, key_map, note = foreign_state(card, plain_state_dict(model))
    digest = write_safetensors(state, directory / WEIGHTS_NAME)
    config = build_config(card, names, digest, key_map=key_map, note=note)
    write_text_atomic(directory / CONFIG_NAME, json.dumps(config, indent=2) + "\n")
    write_text_atomic(directory / README_NAME, str(readme) + (f"\n## Other libraries\n\nThis model is {note}. "
                                                               "It loads with zoo.\n" if note else ""))
    license_id = license_of(card)
    if is_non_commercial(license_id):
        warnings.warn(non_commercial_warning(str(license_id)), UserWarning, stacklevel=2)
    return directory


def push_to_hub(model: nn.Module, repo_id: str, *, token: str | bool | None = None, private: bool | None = None,
                revision: str | None = None, commit_message: str = "Upload model saved with zoo",
                labels: Sequence[str] | None = None, create_repo: bool = True, **readme: Any) -> Any:
    """Save `model` as `save_pretrained` does and upload the files to a Hub model repo.

    `readme` takes `save_pretrained`'s model card options (`base_model`, `datasets`, `metrics`,
    `metrics_split`). Returns huggingface_hub's commit info. `token` defaults to ``HF_TOKEN`` or the
    stored login. A Hub that cannot be reached (within `zoo.weights.sources.hub_timeout` seconds) or
    refuses the upload is a `WeightsError` saying what to check.
    """
    endpoint = hub_endpoint()
    failure = None if offline() else hub_unreachable(repo_id, token=token)
    if failure is not None:
        raise WeightsError(f"could not reach the Hub ({endpoint}) to push {repo_id}: {failure}. Check the network "
                           "connection, HF_ENDPOINT and any proxy settings")
    api = HfApi(token=token, endpoint=endpoint)
    failures: tuple[type[BaseException], ...] = (hf_errors.HfHubHTTPError, *transport_errors())
    with tempfile.TemporaryDirectory(prefix="zoo-push-") as tmp:
        save_pretrained(model, tmp, labels=labels, repo_id=repo_id, **readme)
        try:
            if create_repo:
                api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            return api.upload_folder(repo_id=repo_id, folder_path=tmp, repo_type="model", revision=revision,
                                     commit_message=commit_message)
        except failures as exc:
            raise _push_failure(exc, repo_id, api.endpoint) from exc


def _push_failure(exc: BaseException, repo_id: str, endpoint: str) -> WeightsError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, hf_errors.HfHubHTTPError):
        return WeightsError(f"the Hub ({endpoint}) refused to push {repo_id}: {reason}. Check the token "
                            f"(HF_TOKEN or `hf auth login`) and that it may write to {repo_id}")
    return WeightsError(f"could not reach the Hub ({endpoint}) to push {repo_id}: {reason}. Check the network "
                        "connection, unset HF_HUB_OFFLINE to upload, and check HF_ENDPOINT and the token")
