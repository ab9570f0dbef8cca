"""sha256 checks of weight files, with a record so a verified file is not hashed on every load.

A card gives the full hex digest or a prefix of it (torchvision puts an 8-digit prefix in its
file names, ``resnet18-f37072fd.pth``). The digest of a file that was hashed is recorded under
``$ZOO_CACHE/verified`` (default ``~/.cache/zoo``), keyed by the file's real path and stamped with
its device, inode, size, and modification and change times. The record is used only while all of
them are unchanged: writing to the file (which moves its change time, even when its size and
modification time are put back), replacing it, or moving another file there hashes it again. A
file changed within the last seconds before it was hashed is not recorded (its times may not yet
show a write that follows in the same clock tick), nor one that changed while it was hashed; a
damaged record only costs a re-hash.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

from ..errors import WeightsError
from ..files import write_text_atomic, zoo_cache_dir

_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")
SETTLED_NS = 2_000_000_000
"""A file whose change time is this recent when it is hashed is not recorded (coarse file-system clocks)."""


def hash_from_filename(filename: str) -> str | None:
    """The hash prefix in a torchvision-style file name (``name-<hex>.pth``), if any."""
    match = _HASH_IN_NAME.search(filename)
    return match.group(1) if match else None


def sha256_of(path: str | os.PathLike[str]) -> str:
    return file_hasher(path).hexdigest()


def file_hasher(path: str | os.PathLike[str]) -> hashlib._Hash:
    """A sha256 object fed with the file's bytes, to go on with the bytes still to come (a resumed download)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256")  # reads into one reused buffer: no copy per chunk


def _stamp_path(path: Path) -> Path:
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()
    return zoo_cache_dir() / "verified" / f"{key}.json"


def _file_identity(path: Path) -> dict[str, str | int]:
    st = path.stat()
    return {"path": str(path.resolve()), "device": st.st_dev, "inode": st.st_ino, "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}


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
    """Stamp `path` as having sha256 `digest`, so `check_file` does not hash it again while it is unchanged.

    For a caller that knows the file holds exactly the bytes it hashed (a download it has just written
    and renamed into place); `file_sha256` records what it hashes itself.
    """
    _record(path, _file_identity(path), digest)


def _record(path: Path, identity: dict[str, str | int], digest: str) -> None:
    try:
        write_text_atomic(_stamp_path(path), json.dumps({**identity, "sha256": digest}))
    except OSError:
        pass  # a read-only cache only costs a re-hash next time


def file_sha256(path: Path) -> str:
    """The sha256 of `path`: its record while the file is unchanged, else hashed now (and recorded)."""
    path = Path(path)
    stamped = _stamped_digest(path)
    if stamped is not None:
        return stamped
    before = _file_identity(path)
    digest = sha256_of(path)
    settled = time.time_ns() - int(before["ctime_ns"]) >= SETTLED_NS
    if settled and _file_identity(path) == before:
        _record(path, before, digest)
    return digest


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
    check_digest(file_sha256(path), sha256, what=what, where=str(path), size=actual_size)
