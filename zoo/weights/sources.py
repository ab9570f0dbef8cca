"""Where weights come from: a Hugging Face Hub repo, a URL, or a local file.

* ``hf-hub:org/repo`` (optionally ``@revision``): through huggingface_hub, so its cache
  (``HF_HUB_CACHE`` / ``HF_HOME``), revisions, tokens (``HF_TOKEN`` or a stored login) and
  ``HF_HUB_OFFLINE=1`` apply. Small side files of the repo (config, tokenizer) come along.
* ``https://...``: downloaded into the torch hub cache (``$TORCH_HOME/hub/checkpoints``),
  with a progress bar. Processes downloading one file take turns on ``NAME.lock``; the one
  holding it writes ``NAME.partial`` and resumes one an interrupted download left. The file
  gets its name only once complete and verified; a server sending more than the card's
  ``file_size`` or its own Content-Length is cut off.
* ``package:PACKAGE/path/in/it.safetensors``: a file shipped inside an installed Python package
  (a plugin's own weights), found as ``importlib.resources.files(PACKAGE)`` would, without importing
  the package; a path leading out of the package is refused.
* anything else (``/path/file.safetensors``, ``~/w.pth``, ``file:///...``): a local file.

Every file is checked against the card's sha256 before it is used; a cached download that
fails the check is removed so that the next attempt downloads it again. A Hub repo id the Hub
client would refuse is refused here first, before any network access. Nothing here imports
torch or huggingface_hub at import time.
"""
from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import os
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import BinaryIO

from .._env import env_flag
from .._progress import ProgressBar, progress_bar
from ..cards import ModelCard, WeightsCard
from ..errors import WeightsError
from ..names import HUB_PREFIX
from .verify import check_digest, check_file, file_hasher, hash_from_filename, remember_verified

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # Windows: no flock; each download then writes a partial file of its own
    fcntl = None

HF_PREFIX = HUB_PREFIX
PACKAGE_PREFIX = "package:"
DEFAULT_HF_FILENAME = "model.safetensors"
# Small files a family may need beside the weights (tokenizers, configs).
SIDE_FILE_PATTERNS = ("*.json", "*.txt", "*.model", "*.tiktoken")
_OFFLINE = "offline mode is on (HF_HUB_OFFLINE=1 or ZOO_OFFLINE=1)"
# huggingface_hub's `validate_repo_id` rules, so a name is refused the same way without importing it.
_HUB_NAME_PART = re.compile(r"\w(?:[\w.-]{0,94}\w)?", re.ASCII)
HUB_REPO_ID_RULES = ("'org/name' or 'name', each part 1 to 96 letters, digits, '_', '-' or '.', starting and ending "
                     "with a letter, digit or '_', without '--' or '..', not ending in '.git' (e.g. 'acme/resnet-50')")


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
        check_hub_repo_id(repo)
        return Source("hf-hub", repo, weights.filename or DEFAULT_HF_FILENAME, weights.revision or revision or None)
    if source.startswith(PACKAGE_PREFIX):
        path = package_file(source[len(PACKAGE_PREFIX):])
        return Source("local", str(path), path.name)
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


def package_file(spec: str) -> Path:
    """The file ``PACKAGE/relative/path`` names inside an installed top-level package (which is not imported)."""
    package, _, relative = spec.partition("/")
    usage = "a package source is 'package:PACKAGE/path/in/it' (e.g. 'package:acme_zoo/weights/net.safetensors')"
    parts = relative.replace("\\", "/").split("/")
    if not package.isidentifier() or not relative or relative.startswith("/") or ".." in parts:
        raise WeightsError(f"{PACKAGE_PREFIX + spec!r} is not a file in a package: {usage}, with no '..'")
    try:
        found = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        raise WeightsError(f"weights source {PACKAGE_PREFIX}{spec}: no installed package {package!r}; "
                           "install the plugin that ships these weights")
    roots = [Path(folder).resolve() for folder in found.submodule_search_locations]
    paths = [(root, (root / relative).resolve()) for root in roots]
    root, path = next(((r, p) for r, p in paths if p.is_file()), paths[0])
    if not path.is_relative_to(root):
        raise WeightsError(f"weights source {PACKAGE_PREFIX}{spec} leads out of package {package!r} ({path})")
    return path


def check_hub_repo_id(repo_id: str) -> None:
    """Raise a one-line `WeightsError` unless `repo_id` is a repo id the Hub client accepts.

    huggingface_hub refuses such names with its own `HFValidationError`; checking them here
    first gives zoo's error before any cache lookup or network access.
    """
    parts = repo_id.split("/")
    if (len(parts) <= 2 and all(_HUB_NAME_PART.fullmatch(part) for part in parts)
            and "--" not in repo_id and ".." not in repo_id and not repo_id.endswith(".git")):
        return
    raise WeightsError(f"{repo_id!r} is not a Hugging Face Hub repo id: a repo id is {HUB_REPO_ID_RULES}")


def expected_sha256(weights: WeightsCard, source: Source) -> str | None:
    """The card's sha256, else the prefix in a torchvision-style file name."""
    if weights.sha256:
        return weights.sha256
    return hash_from_filename(source.filename) if source.kind != "hf-hub" else None


# ---------------------------------------------------------------------------- environment


def offline() -> bool:
    """``HF_HUB_OFFLINE=1`` (or ``ZOO_OFFLINE=1``): use caches only, never the network."""
    return env_flag("HF_HUB_OFFLINE") or env_flag("ZOO_OFFLINE")


def hub_cache_dir() -> str | None:
    """The Hugging Face cache as the environment says now (huggingface_hub reads it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return None


def torch_hub_dir() -> Path:
    """torch.hub's directory, computed as torch does (without importing torch when it is not loaded)."""
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

    found = try_to_load_from_cache(source.location, source.filename, cache_dir=hub_cache_dir(),
                                   revision=source.revision)
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
    named = f"{card.name}.{tag or card.default_weights}"
    what = f"weights {named}"
    if source.kind == "local":
        path = Path(source.location)
        if not path.is_file():
            raise WeightsError(f"{what}: local file {path} does not exist; "
                               "fix the card's source or copy the file there")
        check_file(path, sha256=expected, file_size=weights.file_size, what=what)
        return path
    if source.kind == "url":
        path = url_cache_path(source)
        if force or not path.exists():
            if offline():
                raise NotCachedError(what, path.name, f"the torch hub cache ({path.parent})", _OFFLINE,
                                     download=named, scratch=True, offline=True)
            download_url(source.location, path, sha256=expected, file_size=weights.file_size, what=what, force=force,
                         progress=progress)
        _check_or_remove(path, expected, weights.file_size, what)
        return path
    path = hf_download(source, token=token, force=force, what=what, download=named)
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


class NotCachedError(WeightsError):
    """Weights or a Hub repo that are not on disk and cannot be downloaded now (offline mode, or no network).

    The message names the cache, the `zoo download NAME` command that fills it and, for a card's
    weights, starting from random weights instead; `while_downloading` says it for `zoo download` itself.
    """

    def __init__(self, what: str, item: str, cache: str, reason: str, *, download: str, scratch: bool = False,
                 offline: bool = False) -> None:
        self.what, self.item, self.cache, self.reason = what, item, cache, reason
        self.download, self.scratch, self.offline = download, scratch, offline
        fix = f"run `zoo download {download}` with network access first"
        if scratch:
            fix += ", or start from random weights (pretrained=False; `zoo finetune --scratch`)"
        super().__init__(f"{self._missing()}; {fix}")

    def _missing(self) -> str:
        return f"{self.what}: {self.item} is not in {self.cache} and {self.reason}"

    def while_downloading(self) -> str:
        """The message for `zoo download` itself: what stops the download, not a command to run it."""
        fix = ("unset HF_HUB_OFFLINE and ZOO_OFFLINE to download it" if self.offline else
               "check the network connection (and HF_ENDPOINT or proxy settings), then run again")
        return f"{self._missing()}; {fix}"


# ---------------------------------------------------------------------------- Hugging Face Hub


def hf_snapshot(repo_id: str, *, revision: str | None, patterns: list[str], token: str | bool | None = None,
                force: bool = False, what: str = "model", download: str | None = None, scratch: bool = False) -> Path:
    """Download (or find in the cache) the files of a repo that match `patterns`; returns the snapshot dir.

    Not in the cache and not downloadable now is a `NotCachedError` naming `zoo download DOWNLOAD`
    (default ``hf-hub:REPO``) and, with `scratch`, random weights as the other way out.
    """
    return _snapshot(repo_id, revision=revision, patterns=patterns, token=token, force=force, what=what,
                     download=download, scratch=scratch)[0]


def _snapshot(repo_id: str, *, revision: str | None, patterns: list[str], token: str | bool | None, force: bool,
              what: str, download: str | None, scratch: bool) -> tuple[Path, str | None]:
    """`hf_snapshot`, and why it came from the cache only (offline, or a Hub that did not answer), if it did."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    check_hub_repo_id(repo_id)
    at = f"{repo_id}@{revision}" if revision else repo_id
    local_only = cache_only_reason(repo_id, revision=revision, token=token)
    try:
        folder = snapshot_download(
            repo_id, revision=revision, cache_dir=hub_cache_dir(), local_files_only=local_only is not None,
            token=token, allow_patterns=patterns, force_download=force, library_name="zoo", endpoint=hub_endpoint(),
        )
    except LocalEntryNotFoundError as exc:
        raise NotCachedError(what, f"Hub repo {at}", _hub_cache_named(), local_only or "the Hub could not be reached",
                             download=download or f"{HF_PREFIX}{at}", scratch=scratch, offline=offline()) from exc
    except (GatedRepoError, RepositoryNotFoundError) as exc:
        raise WeightsError(f"{what}: cannot access Hub repo {at}: it does not exist or needs a token; "
                           "log in with `hf auth login` or set HF_TOKEN") from exc
    except RevisionNotFoundError as exc:
        raise WeightsError(f"{what}: Hub repo {repo_id} has no revision {revision!r}") from exc
    except HfHubHTTPError as exc:
        raise WeightsError(f"{what}: download from Hub repo {at} failed: {exc}") from exc
    return Path(folder), local_only


def hf_download(source: Source, *, token: str | bool | None = None, force: bool = False, what: str = "weights",
                download: str | None = None) -> Path:
    """One file of a Hub repo (with the repo's small side files), from the cache or downloaded."""
    folder, local_only = _snapshot(source.location, revision=source.revision, token=token, force=force, what=what,
                                   patterns=[source.filename, *SIDE_FILE_PATTERNS], download=download, scratch=True)
    path = folder / source.filename
    if path.is_file():
        return path
    if local_only is not None:
        raise NotCachedError(what, f"file {source.filename!r} of Hub repo {source.location}", _hub_cache_named(),
                             local_only, download=download or f"{HF_PREFIX}{source.location}", scratch=True,
                             offline=offline())
    raise WeightsError(f"{what}: Hub repo {source.location} has no file {source.filename!r}; fix the card's filename")


def _hub_cache_named() -> str:
    from huggingface_hub import constants

    return f"the Hugging Face cache ({hub_cache_dir() or constants.HF_HUB_CACHE})"


# ---------------------------------------------------------------------------- reaching the Hub

HUB_TIMEOUT_S = 3.0  # how long zoo waits for the Hub's first answer (ZOO_HUB_TIMEOUT overrides it)
_REMEMBER_UNREACHABLE_S = 60.0
_unreachable: dict[str, tuple[float, str]] = {}  # endpoint -> (when it did not answer, why)


def hub_endpoint() -> str:
    """The Hub's address as the environment says now (``HF_ENDPOINT``, else huggingface_hub's default)."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hub_timeout() -> float:
    """Seconds to wait for the Hub to answer: ``ZOO_HUB_TIMEOUT``, default `HUB_TIMEOUT_S`."""
    raw = os.environ.get("ZOO_HUB_TIMEOUT", "").strip()
    try:
        seconds = float(raw) if raw else HUB_TIMEOUT_S
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise WeightsError(f"ZOO_HUB_TIMEOUT must be a positive number of seconds, got {raw!r}")
    return seconds


def cache_only_reason(repo_id: str, *, revision: str | None = None, token: str | bool | None = None) -> str | None:
    """Why Hub files must come from the cache now (offline mode, or a Hub that did not answer), or None.

    Hub access starts with one request for the repo's info, bounded by `hub_timeout` and never
    retried: without a network zoo falls back to the cache, or fails, within seconds, where
    huggingface_hub alone would wait for its retries (or, for a server that never answers, for
    good). An address that did not answer is not asked again for a minute.
    """
    if offline():
        return _OFFLINE
    failure = hub_unreachable(repo_id, revision=revision, token=token)
    return None if failure is None else f"the Hub ({hub_endpoint()}) could not be reached ({failure})"


def hub_unreachable(repo_id: str, *, revision: str | None = None, token: str | bool | None = None) -> str | None:
    """Why the Hub did not answer a request for `repo_id`'s info, or None when it answered (even "no such repo").

    The request runs in a thread that is waited for `hub_timeout` seconds at most, whatever retries
    the HTTP client makes on its own; one still waiting then ends in the background.
    """
    from huggingface_hub.errors import HfHubHTTPError

    endpoint = hub_endpoint()
    known = _unreachable.get(endpoint)
    if known is not None and time.monotonic() - known[0] < _REMEMBER_UNREACHABLE_S:
        return known[1]
    timeout = hub_timeout()
    outcome = _ask_hub(endpoint, repo_id, revision, token, timeout)
    if outcome is None or isinstance(outcome, HfHubHTTPError):
        _unreachable.pop(endpoint, None)  # it answered; what the answer means is for the download to report
        return None
    if not isinstance(outcome, transport_errors()):
        raise outcome
    why = _failure_text(outcome, timeout)
    _unreachable[endpoint] = (time.monotonic(), why)
    return why


def _failure_text(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower():
        return f"no answer within {timeout:g} s"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _ask_hub(endpoint: str, repo_id: str, revision: str | None, token: str | bool | None,
             timeout: float) -> BaseException | None:
    """Ask for a repo's info; None when the Hub answered with it, else what was raised (TimeoutError: no answer)."""
    from huggingface_hub import HfApi

    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            HfApi(endpoint=endpoint, token=token, library_name="zoo").repo_info(repo_id, revision=revision,
                                                                                timeout=timeout)
            outcome.append(None)
        except Exception as exc:  # handed over to the waiting thread
            outcome.append(exc)

    worker = threading.Thread(target=ask, name="zoo-hub-request", daemon=True)
    worker.start()
    worker.join(timeout)
    return outcome[0] if outcome else TimeoutError()


def transport_errors() -> tuple[type[BaseException], ...]:
    """What huggingface_hub's HTTP client raises when no answer comes: OSError (requests' errors and
    offline mode are OSErrors) and httpx's transport errors, for the httpx that is loaded."""
    found: list[type[BaseException]] = [OSError]
    for module in ("httpx2", "httpx"):
        error = getattr(sys.modules.get(module), "TransportError", None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


# ---------------------------------------------------------------------------- URLs


LOCK_STALL_S = 120.0  # give up waiting for another process's download after this long without progress
_READ = 1 << 20


class _BadDownload(WeightsError):
    """The server sent too much or the wrong bytes: the partial file is worthless."""


def download_url(url: str, dest: Path, *, sha256: str | None = None, file_size: int | None = None,
                 what: str = "weights", force: bool = False, progress: bool = True, timeout: float = 30.0) -> None:
    """Download `url` to `dest`, which appears only complete (`file_size` bytes, if given) and matching `sha256`.

    Processes downloading one file take turns on ``dest.lock``; one that waited finds `dest` and
    returns (unless `force`). The holder writes ``dest.partial`` and resumes what an interrupted
    download left there with an HTTP Range request: its writer let go of the lock, so it no longer
    writes. Where the file system has no locks, each download writes ``NAME.<pid>.<random>.partial``
    from zero. A server sending more than `file_size` or its Content-Length is cut off at once.
    """
    dest = Path(dest)
    with _download_lock(dest, what) as locked:
        if dest.exists() and not force:
            return  # another process downloaded it while this one waited
        partial = _shared_partial(dest) if locked else _own_partial(dest)
        try:
            digest, size = _download_into(partial, url, name=dest.name, file_size=file_size, resume=locked,
                                          progress=progress, timeout=timeout)
            _check_download(digest, size, sha256=sha256, what=what, url=url)
        except BaseException as exc:
            if not locked or isinstance(exc, _BadDownload):  # otherwise keep it for the next run to resume
                partial.unlink(missing_ok=True)
            raise
        os.replace(partial, dest)
        remember_verified(dest, digest)


def _check_download(digest: str, size: int, *, sha256: str | None, what: str, url: str) -> None:
    try:
        check_digest(digest, sha256, what=what, where=f"downloaded from {url}", size=size)
    except WeightsError as exc:
        raise _BadDownload(f"{exc} It was discarded; run again to download it anew.") from None


def _shared_partial(dest: Path) -> Path:
    return dest.with_name(dest.name + ".partial")


def _own_partial(dest: Path) -> Path:
    return dest.with_name(f"{dest.name}.{os.getpid()}.{secrets.token_hex(8)}.partial")


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


@contextlib.contextmanager
def _download_lock(dest: Path, what: str) -> Iterator[bool]:
    """Hold ``dest.lock`` for the block; yields False where the file system offers no locks."""
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(dest.with_name(dest.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise WeightsError(f"{what}: cannot write in {dest.parent} ({exc}); "
                           "set TORCH_HOME to a writable folder") from exc
    try:
        yield _wait_for_lock(fd, dest, what)
    finally:
        os.close(fd)  # releases the lock


def _wait_for_lock(fd: int, dest: Path, what: str) -> bool:
    """Take the lock, waiting as long as the holder's partial file keeps growing."""
    if fcntl is None:
        return False
    partial = _shared_partial(dest)
    seen: int | None = -1
    since = time.monotonic()
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        except OSError:  # a file system without locks (some network mounts)
            return False
        size = _size(partial)
        if size != seen:
            seen, since = size, time.monotonic()
        elif time.monotonic() - since > LOCK_STALL_S:
            raise WeightsError(f"{what}: another process holds {dest.name}.lock in {dest.parent} and its download "
                               f"has not grown for {LOCK_STALL_S:.0f} s; stop that process and run again")
        time.sleep(0.1)


def _download_into(partial: Path, url: str, *, name: str, file_size: int | None, resume: bool, progress: bool,
                   timeout: float) -> tuple[str, int]:
    """Write `url` into `partial` (after what it holds, when resuming); returns the whole file's sha256 and size."""
    start = (_size(partial) or 0) if resume else 0
    if file_size is not None and start > file_size:
        start = 0  # not a piece of this file
    response = _open_url(url, start, timeout)
    if response is None:  # the partial file already holds everything
        return file_hasher(partial).hexdigest(), start
    with response:
        if start and response.status != 206:
            start = 0  # the server ignored the range: start over
        length = _content_length(response)
        limit = _byte_limit(length, file_size, start)
        digest = file_hasher(partial) if start else hashlib.sha256()
        total = start + length if length is not None else file_size
        with open(partial, "ab" if start else "wb") as out, _progress(total, start, name, progress) as bar:
            try:
                received = _copy_limited(response, out, digest, bar, limit)
            except (OSError, http.client.HTTPException) as exc:
                raise WeightsError(f"download of {url} was interrupted ({exc}); run again to finish it") from exc
            except _BadDownload as exc:
                raise _BadDownload(f"download of {url} was cut off: the server {exc}; its partial file was "
                                   "removed. Check the card's URL and file_size.") from None
    size = start + received
    ends = [end for end in (file_size, None if length is None else start + length) if end is not None]
    if ends and size < max(ends):
        raise WeightsError(f"download of {url} stopped at {size} of {max(ends)} bytes; run again to finish it")
    return digest.hexdigest(), size


def _open_url(url: str, start: int, timeout: float) -> http.client.HTTPResponse | None:
    """The response to a GET of `url` from byte `start`; None when the server has nothing after it (HTTP 416)."""
    headers = {"User-Agent": "zoo"}
    if start:
        headers["Range"] = f"bytes={start}-"
    try:
        response: http.client.HTTPResponse = urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                                                    timeout=timeout)
        return response
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and start:
            return None
        raise WeightsError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WeightsError(f"download of {url} failed: {exc}; check the network or run offline from a cache") from exc


def _content_length(response: http.client.HTTPResponse) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, TypeError, ValueError):
        return None


def _byte_limit(length: int | None, file_size: int | None, start: int) -> tuple[int, str] | None:
    """The most bytes the response may bring, and what says so."""
    limits = [(length, f"its Content-Length ({length} bytes)")] if length is not None else []
    if file_size is not None:
        limits.append((file_size - start, f"the card's file_size ({file_size} bytes)"))
    return min(limits) if limits else None


def _copy_limited(response: http.client.HTTPResponse, out: BinaryIO, digest: hashlib._Hash, bar: ProgressBar,
                  limit: tuple[int, str] | None) -> int:
    """Copy the body to `out` (and `digest`), raising `_BadDownload` on the first byte past `limit`."""
    received = 0
    while chunk := response.read(_READ if limit is None else min(_READ, limit[0] - received + 1)):
        received += len(chunk)
        if limit is not None and received > limit[0]:
            raise _BadDownload(f"sent more than {limit[1]}")
        out.write(chunk)
        digest.update(chunk)
        bar.update(len(chunk))
    out.flush()
    os.fsync(out.fileno())
    return received


def _progress(total: int | None, initial: int, name: str, enabled: bool) -> ProgressBar:
    return progress_bar(enabled=enabled, total=total, initial=initial, description=name, unit="B", unit_scale=True,
                        unit_divisor=1024)
