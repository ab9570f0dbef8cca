"""sha256 checks of weight files, with a stamp so a verified file is not hashed on every load.

A card gives the full hex digest or a prefix of it (torchvision puts an 8-digit prefix in its
file names, ``resnet18-f37072fd.pth``). A file that passed is remembered by path, size and
modification time under ``$ZOO_CACHE/verified`` (default ``~/.cache/zoo``); any change to the
file (a truncation, a new download) hashes it again.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from ..errors import WeightsError
from ..files import write_text_atomic, zoo_cache_dir

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
_CHUNK = 1 << 22


def hash_from_filename(filename: str) -> str | None:
    """The hash prefix in a torchvision-style file name (``name-<hex>.pth``), if any."""
    match = _HASH_IN_NAME.search(filename)
    return match.group(1) if match else None


def sha256_of(path: str | os.PathLike[str]) -> str:
    return file_hasher(path).hexdigest()


def file_hasher(path: str | os.PathLike[str]) -> hashlib._Hash:
    """A sha256 object fed with the file's bytes, to go on with the bytes still to come (a resumed download)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest


def _stamp_path(path: Path) -> Path:
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()
    return zoo_cache_dir() / "verified" / f"{key}.json"


def _file_identity(path: Path) -> dict[str, str | int]:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _stamped_digest(path: Path) -> str | None:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or not isinstance(stamp.get("sha256"), str):
        return None  # a damaged stamp only costs a re-hash
    identity = _file_identity(path)
    if all(stamp.get(k) == v for k, v in identity.items()):
        digest: str = stamp["sha256"]
        return digest
    return None


def remember_verified(path: Path, digest: str) -> None:
    """Stamp `path` as having sha256 `digest`, so `check_file` does not hash it again while it is unchanged."""
    target = _stamp_path(path)
    try:
        write_text_atomic(target, json.dumps({**_file_identity(path), "sha256": digest}))
    except OSError:
        pass  # a read-only cache only costs a re-hash next time


def check_digest(digest: str, sha256: str | None, *, what: str, where: str, size: int) -> None:
    """Raise `WeightsError` unless `digest` (of `size` bytes at `where`) starts with the card's `sha256`."""
    if sha256 and not digest.startswith(sha256):
        raise WeightsError(
            f"{what} file {where} has sha256 {digest}, expected {sha256}"
            f"{'...' if len(sha256) < 64 else ''} ({size} bytes): the file is corrupt or truncated."
        )


def check_file(path: Path, *, sha256: str | None, file_size: int | None = None, what: str = "weights") -> None:
    """Raise `WeightsError` if `path` is truncated or its sha256 does not start with `sha256`."""
    path = Path(path)
    actual_size = path.stat().st_size
    if file_size is not None and actual_size != file_size:
        state = "truncated" if actual_size < file_size else "larger than expected"
        raise WeightsError(
            f"{what} file {path} is {state}: {actual_size} bytes, expected {file_size}"
            + (f" (sha256 {sha256})" if sha256 else "") + "."
        )
    if not sha256:
        return
    stamped = _stamped_digest(path)
    if stamped is not None and stamped.startswith(sha256):
        return
    digest = sha256_of(path)
    check_digest(digest, sha256, what=what, where=str(path), size=actual_size)
    remember_verified(path, digest)
