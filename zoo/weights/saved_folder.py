"""Where a ``local-dir:`` or ``hf-hub:`` name points: the folder, its ``config.json`` and its weights file."""
from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from ..errors import UntrustedCodeError, WeightsError
from ..names import HUB_PREFIX, LOCAL_PREFIX
from .saving import CONFIG_NAME
from .sources import check_hub_repo_id, hf_snapshot

_HUB_PATTERNS = ["*.json", "*.safetensors", "*.txt", "*.md", "*.model"]
_PICKLE_NAMES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
_SAFETENSORS_NAMES = ("model.safetensors", "model.safetensors.index.json")
CONFIG_SIZE_LIMIT = 16 * 1024 * 1024


def saved_directory(name: str, *, token: str | bool | None = None, force: bool = False) -> Path:
    """The local directory a ``local-dir:`` or ``hf-hub:`` name refers to (downloading if needed;
    `force` downloads a Hub repo's files again)."""
    if name.startswith(LOCAL_PREFIX):
        directory = Path(name[len(LOCAL_PREFIX):]).expanduser()
        try:
            found = directory.is_dir()
        except OSError as exc:  # a name too long for the file system, a loop of links
            raise WeightsError(f"{name[:200]}: cannot use this path ({exc.strerror or exc})") from None
        if not found:
            raise WeightsError(f"{name}: no such directory; save a model there with zoo.save_pretrained(model, DIR)")
        return directory
    if not name.startswith(HUB_PREFIX):
        raise WeightsError(f"{name!r} is neither 'local-dir:PATH' nor 'hf-hub:org/repo'")
    repo, _, revision = name[len(HUB_PREFIX):].partition("@")
    check_hub_repo_id(repo)
    if repo.count("/") != 1:
        raise WeightsError(f"{name}: a Hub repo is named 'org/repo', optionally with '@revision'")
    folder = hf_snapshot(repo, revision=revision or None, patterns=_HUB_PATTERNS, token=token, force=force,
                         what=name, download=name)
    if not any((folder / n).exists() for n in _SAFETENSORS_NAMES):
        folder = hf_snapshot(repo, revision=revision or None, patterns=_HUB_PATTERNS + ["pytorch_model*.bin"],
                             token=token, force=force, what=name, download=name)
    return folder


def weights_file(directory: Path) -> Path:
    for name in _SAFETENSORS_NAMES + _PICKLE_NAMES:
        if (directory / name).is_file():
            return directory / name
    raise WeightsError(f"{directory} holds no weights: expected {' or '.join(_SAFETENSORS_NAMES + _PICKLE_NAMES)}")


def read_config(directory: Path) -> dict[str, Any]:
    """The folder's ``config.json``: a regular file of at most `CONFIG_SIZE_LIMIT` bytes holding a JSON object."""
    path = directory / CONFIG_NAME
    try:
        info = path.stat()
    except FileNotFoundError:
        raise WeightsError(f"{directory} has no {CONFIG_NAME}: it is not a saved model; "
                           "save one with zoo.save_pretrained(model, DIR)") from None
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise WeightsError(f"{path} is not a regular file (a device, pipe or folder); a saved model's "
                           f"{CONFIG_NAME} is a small JSON file")
    if info.st_size > CONFIG_SIZE_LIMIT:
        raise WeightsError(f"{path} is {info.st_size} bytes; a {CONFIG_NAME} is at most {CONFIG_SIZE_LIMIT} bytes")
    try:
        with path.open("rb") as fh:
            config = json.loads(fh.read(CONFIG_SIZE_LIMIT + 1))
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise WeightsError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path} must hold a JSON object")
    return config


def open_saved(name: str, *, token: str | bool | None = None) -> tuple[Path, dict[str, Any]]:
    """The folder of a ``local-dir:``/``hf-hub:`` name and its config, refused if it ships code of its own.

    Which format the config is, and the error for one no installed plugin reads, is `zoo.weights.saved`'s."""
    directory = saved_directory(name, token=token)
    config = read_config(directory)
    where = directory / CONFIG_NAME
    if "auto_map" in config:
        raise UntrustedCodeError(
            f"{where} ships its own model code (auto_map: {config['auto_map']!r}); zoo never imports code "
            "from a model folder or Hub repo. Load it with transformers' trust_remote_code=True only after "
            "reading that code, or use a checkpoint of a model type an installed family supports.")
    return directory, config
