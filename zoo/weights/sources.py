"""Where weights come from: a Hugging Face Hub repo, a URL, or a local file.

* ``hf-hub:org/repo`` (optionally ``@revision``): through huggingface_hub, so its cache
  (``HF_HUB_CACHE`` / ``HF_HOME``), revisions, tokens (``HF_TOKEN`` or a stored login) and
  ``HF_HUB_OFFLINE=1`` apply. Small side files of the repo (config, tokenizer) come along.
* ``https://...``: downloaded into the torch hub cache (``$TORCH_HOME/hub/checkpoints``),
  with a progress bar; an interrupted download resumes from its ``.partial`` file.
* anything else (``/path/file.safetensors``, ``~/w.pth``, ``file:///...``): a local file.

Every file is checked against the card's sha256 before it is used; a cached download that
fails the check is removed so that the next attempt downloads it again. Nothing here imports
torch or huggingface_hub at import time.
"""
from __future__ import annotations

import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..cards import ModelCard, WeightsCard
from ..errors import WeightsError
from .verify import check_file, hash_from_filename

HF_PREFIX = "hf-hub:"
DEFAULT_HF_FILENAME = "model.safetensors"
# Small files a family may need beside the weights (tokenizers, configs).
SIDE_FILE_PATTERNS = ("*.json", "*.txt", "*.model", "*.tiktoken")
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Source:
    """A parsed `WeightsCard.source`."""

    kind: str  # "hf-hub", "url" or "local"
    location: str  # repo id, URL or path
    filename: str
    revision: str | None = None


def parse_source(weights: WeightsCard) -> Source:
    source = weights.source
    if source.startswith(HF_PREFIX):
        repo, _, revision = source[len(HF_PREFIX):].partition("@")
        return Source("hf-hub", repo, weights.filename or DEFAULT_HF_FILENAME, weights.revision or revision or None)
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme in ("http", "https"):
        name = weights.filename or os.path.basename(parsed.path)
        if not name:
            raise WeightsError(f"cannot tell a file name from URL {source!r}; set WeightsCard.filename")
        return Source("url", source, name)
    if parsed.scheme == "file":
        source = urllib.request.url2pathname(parsed.path)
    path = Path(os.path.expandvars(source)).expanduser()
    if weights.filename and not path.suffix:
        path = path / weights.filename
    return Source("local", str(path), path.name)


def expected_sha256(weights: WeightsCard, source: Source) -> str | None:
    """The card's sha256, else the prefix in a torchvision-style file name."""
    if weights.sha256:
        return weights.sha256
    return hash_from_filename(source.filename) if source.kind != "hf-hub" else None


# ---------------------------------------------------------------------------- environment


def offline() -> bool:
    """``HF_HUB_OFFLINE=1`` (or ``ZOO_OFFLINE=1``): use caches only, never the network."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "ZOO_OFFLINE"))


def hub_cache_dir() -> str | None:
    """The Hugging Face cache as the environment says now (huggingface_hub reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def torch_hub_dir() -> Path:
    """torch.hub's directory, computed as torch does (without importing torch when it is not loaded)."""
    import sys

    if "torch" in sys.modules:
        return Path(sys.modules["torch"].hub.get_dir())
    if os.environ.get("TORCH_HOME"):
        home = os.path.expanduser(os.environ["TORCH_HOME"])
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = os.path.join(cache, "torch")
    return Path(home) / "hub"


def url_cache_path(source: Source) -> Path:
    return torch_hub_dir() / "checkpoints" / source.filename


# ---------------------------------------------------------------------------- public API


def weights_of(card: ModelCard, tag: str | None) -> WeightsCard:
    tag = tag or card.default_weights
    if tag is None or tag not in card.weights:
        known = ", ".join(sorted(card.weights)) or "none"
        raise WeightsError(f"model {card.name!r} has no weights {tag!r}; its weights are: {known}")
    return card.weights[tag]


def cached_path(card: ModelCard, tag: str | None = None) -> Path | None:
    """The local file of a card's weights if it is already on disk (no download, no hashing)."""
    source = parse_source(weights_of(card, tag))
    if source.kind == "local":
        path = Path(source.location)
        return path if path.is_file() else None
    if source.kind == "url":
        path = url_cache_path(source)
        return path if path.is_file() else None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(source.location, source.filename, cache_dir=hub_cache_dir(), revision=source.revision)
    return Path(found) if isinstance(found, str) else None


def is_cached(card: ModelCard, tag: str | None = None) -> bool:
    """Whether `zoo.create(..., pretrained=True)` can load these weights without the network."""
    return cached_path(card, tag) is not None


def fetch(card: ModelCard, tag: str | None = None, *, token: str | bool | None = None,
          force: bool = False, progress: bool = True) -> Path:
    """Download (or find) and verify a card's weights; returns the local file.

    `token` is passed to huggingface_hub (default: ``HF_TOKEN`` or the stored login);
    `force` downloads again even when a cached copy exists.
    """
    weights = weights_of(card, tag)
    source = parse_source(weights)
    expected = expected_sha256(weights, source)
    what = f"weights {card.name}.{tag or card.default_weights}"
    if source.kind == "local":
        path = Path(source.location)
        if not path.is_file():
            raise WeightsError(f"{what}: local file {path} does not exist; fix the card's source or copy the file there")
        check_file(path, sha256=expected, file_size=weights.file_size, what=what)
        return path
    if source.kind == "url":
        path = url_cache_path(source)
        if force and path.exists():
            path.unlink()
        if not path.exists():
            if offline():
                raise WeightsError(f"{what} are not cached at {path} and offline mode is on "
                                   "(HF_HUB_OFFLINE/ZOO_OFFLINE); run `zoo download` with network access first")
            download_url(source.location, path, progress=progress)
        _check_or_remove(path, expected, weights.file_size, what)
        return path
    path = hf_download(source, token=token, force=force, what=what)
    _check_or_remove(path, expected or hub_content_sha256(path), weights.file_size, what)
    return path


def hub_content_sha256(path: Path) -> str | None:
    """The sha256 the Hub gave a large (LFS) file: its cache blob is named by it.

    Lets a card without a `sha256` still have its Hub download checked; small files
    stored in git (blob named by a git hash, 40 digits) are not checked this way.
    """
    name = Path(path).resolve().name
    return name if re.fullmatch(r"[0-9a-f]{64}", name) else None


def remove_cached(path: Path) -> None:
    """Delete a cached file; for a Hugging Face snapshot link, its blob too."""
    path = Path(path)
    real = path.resolve()
    for p in {path, real}:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _check_or_remove(path: Path, sha256: str | None, file_size: int | None, what: str) -> None:
    try:
        check_file(path, sha256=sha256, file_size=file_size, what=what)
    except WeightsError as exc:
        remove_cached(path)
        raise WeightsError(f"{exc} The cached copy was removed; run again to download it anew.") from None


# ---------------------------------------------------------------------------- Hugging Face Hub


def hf_snapshot(repo_id: str, *, revision: str | None, patterns: list[str], token: str | bool | None = None,
                force: bool = False, what: str = "model") -> Path:
    """Download (or find in the cache) the files of a repo that match `patterns`; returns the snapshot dir."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError,
    )

    at = f"{repo_id}@{revision}" if revision else repo_id
    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=hub_cache_dir(), local_files_only=offline(), token=token,
            allow_patterns=patterns, force_download=force, library_name="zoo",
        )
    except LocalEntryNotFoundError as exc:
        mode = "offline mode is on (HF_HUB_OFFLINE=1)" if offline() else "the Hub could not be reached"
        raise WeightsError(f"{what}: {at} is not in the Hugging Face cache ({hub_cache_dir() or 'default'}) and "
                           f"{mode}; run `zoo download` with network access first") from exc
    except (GatedRepoError, RepositoryNotFoundError) as exc:
        raise WeightsError(f"{what}: cannot access Hub repo {at}: it does not exist or needs a token; "
                           "log in with `hf auth login` or set HF_TOKEN") from exc
    except RevisionNotFoundError as exc:
        raise WeightsError(f"{what}: Hub repo {repo_id} has no revision {revision!r}") from exc
    except HfHubHTTPError as exc:
        raise WeightsError(f"{what}: download from Hub repo {at} failed: {exc}") from exc
    return Path(folder)


def hf_download(source: Source, *, token: str | bool | None = None, force: bool = False, what: str = "weights") -> Path:
    folder = hf_snapshot(source.location, revision=source.revision, token=token, force=force, what=what,
                         patterns=[source.filename, *SIDE_FILE_PATTERNS])
    path = folder / source.filename
    if not path.is_file():
        raise WeightsError(f"{what}: Hub repo {source.location} has no file {source.filename!r}"
                           + (" in the local cache (offline mode)" if offline() else ""))
    return path


# ---------------------------------------------------------------------------- URLs


def download_url(url: str, dest: Path, *, progress: bool = True, timeout: float = 30.0) -> None:
    """Download `url` to `dest` through ``dest.partial``, resuming a partial file with an HTTP Range request.

    The caller verifies the result; `dest` appears only once the download is complete.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    start = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": "zoo"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and start:  # the partial file already holds everything
            os.replace(partial, dest)
            return
        raise WeightsError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsError(f"download of {url} failed: {exc}; check the network or run offline from a cache") from exc
    with response:
        if start and response.status != 206:
            start = 0  # the server ignored the range: start over
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        try:
            with open(partial, "ab" if start else "wb") as out, _progress(total, start, dest.name, progress) as bar:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
        except OSError as exc:
            raise WeightsError(f"download of {url} was interrupted ({exc}); run again to resume from "
                               f"{partial.stat().st_size if partial.exists() else 0} bytes") from exc
    if total is not None and partial.stat().st_size < total:
        raise WeightsError(f"download of {url} stopped at {partial.stat().st_size} of {total} bytes; run again to resume")
    os.replace(partial, dest)


class _NoBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n: int) -> None:
        pass


def _progress(total: int | None, initial: int, name: str, enabled: bool):
    if not enabled:
        return _NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:  # torch.hub users may not have tqdm
        return _NoBar()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name)
