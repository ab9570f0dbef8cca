"""Output folders of training runs: one owning run, and folders replaced as one unit.

A ``zoo finetune --out OUT`` folder looks like this::

    OUT/                 the published model (config.json, model.safetensors, README.md, ...):
                         what ``zoo.create("local-dir:OUT")`` loads
    OUT/checkpoints/     the run folder: last.pt, best/ and the lock; no part of the model

Ownership. A run owns its run folder while it holds ``lock`` in it: a file created with
``O_CREAT | O_EXCL`` that names the owner's pid and host. A second run is refused with that
pid; a lock whose pid is no longer alive on this host is stale and taken over. Only the owner
removes what half-written files a killed run left in the folder.

Replacing a folder as one unit (`replace_folder`, used for ``best/`` and for OUT itself): the
new version is built in a sibling ``.NAME.new-PID``; the run folder, if any, is moved into it;
then ``NAME`` is renamed to ``.NAME.old-PID``, ``.NAME.new-PID`` to ``NAME``, and the old
version is removed. Every step is a rename within one parent folder, so at any moment ``NAME``
is the whole old version, the whole new one, or (for an instant) missing with both versions
complete beside it. `recover` runs before a folder is used again: it puts the old version back
where a killed process left ``NAME`` missing, returns the run folder to it, and removes the
leftovers of processes that are gone. New files never sit next to old ones.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..files import sync_directory
from .logger_names import LOG_FOLDER

RUN_FOLDER = "checkpoints"
LOCK = "lock"
# What a run writes into its run folder (besides .temporaries): state, best model, lock, per-epoch history, report,
# loggers' files.
RUN_FILES = frozenset({"last.pt", "best", LOCK, "history.csv", "history.json", "report", LOG_FOLDER})
MODEL_MARKERS = ("config.json", ".safetensors", ".bin", ".pt", ".pth")
_UNREADABLE_LOCK_GRACE_S = 10.0  # a lock being written right now is briefly empty

_held: dict[str, tuple[int, str]] = {}  # real path of a run folder -> (times held in this process, token)
_held_guard = threading.Lock()


class OutputError(ZooError):
    """An output folder cannot be used: another run owns it, it holds other files, or it cannot be written."""


# ---------------------------------------------------------------------------- owning a run folder


@contextlib.contextmanager
def hold(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Own run folder `folder` (created if needed) for the block; nested holds in one process share the lock."""
    folder = Path(folder)
    key = _key(folder)
    with _held_guard:
        count, token = _held.get(key, (0, ""))
        if count == 0:
            token = _acquire(folder)
        _held[key] = (count + 1, token)
    try:
        yield folder
    finally:
        with _held_guard:
            count, token = _held.pop(key)
            if count > 1:
                _held[key] = (count - 1, token)
            else:
                _release(folder, token)


def owner_of(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The live run that holds `folder`'s lock (its pid, host, start time), or None."""
    path = Path(folder) / LOCK
    owner = _read_lock(path)
    return owner if owner is not None and _alive(owner, path) else None


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def _acquire(folder: Path) -> str:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(cannot_write("run folder", folder, exc)) from exc
    path = folder / LOCK
    token = uuid.uuid4().hex
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "token": token,
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode()
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            _take_over_if_stale(path)
            continue
        except OSError as exc:
            raise OutputError(cannot_write("lock file", path, exc)) from exc
        try:
            os.write(fd, record)
            os.fsync(fd)
        except OSError as exc:  # a full disk shows here, before any training
            os.close(fd)
            path.unlink(missing_ok=True)
            raise OutputError(cannot_write("lock file", path, exc)) from exc
        os.close(fd)
        return token
    raise OutputError(f"could not take the lock {path}: other runs keep creating it; start one run at a time")


def _take_over_if_stale(path: Path) -> None:
    owner = _read_lock(path)
    if owner is None and time.time() - _mtime(path) < _UNREADABLE_LOCK_GRACE_S:
        raise OutputError(f"{path.parent} is being taken by another run right now; wait for it or use another folder")
    if owner is not None and _alive(owner, path):
        raise _in_use(path.parent, owner)
    if _read_lock(path) == owner:  # still the stale one: another newcomer may have replaced it meanwhile
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _in_use(folder: Path, owner: dict[str, Any]) -> OutputError:
    return OutputError(
        f"{folder} is in use by another run (pid {owner.get('pid')} on {owner.get('host')}, started "
        f"{owner.get('started')}); wait for it to finish or use another folder (if no such run is going on, "
        f"delete {folder / LOCK})")


def _release(folder: Path, token: str) -> None:
    path = folder / LOCK
    owner = _read_lock(path)
    if owner is not None and owner.get("token") == token:
        path.unlink(missing_ok=True)


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        owner = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return owner if isinstance(owner, dict) else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _alive(owner: dict[str, Any], path: Path) -> bool:
    """Whether the lock's owner still runs; an owner on another host is taken to be alive."""
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():  # this process holds none it does not know of: a former process's pid
        return _key(path.parent) in _held
    return _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    except OSError:
        return False
    return True


# ---------------------------------------------------------------------------- replacing a folder as one unit


def replace_folder(target: str | os.PathLike[str], fill: Callable[[Path], None], *, carry: str | None = None) -> Path:
    """Make a new `target` with ``fill(staging)`` and swap it in as one unit (see the module docstring).

    `carry` names a sub-folder of the current `target` (the run folder) that moves into the new one.
    On an error `target` is left as it was.
    """
    target = Path(os.path.realpath(target))  # a link or "." is replaced where it points
    staging, retired = _sibling(target, "new"), _sibling(target, "old")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        fill(staging)
        sync_directory(staging)
        if carry is not None and (target / carry).exists():
            os.rename(target / carry, staging / carry)
        _swap(staging, target, retired)
    except BaseException:
        if carry is not None and (staging / carry).exists():
            if not target.is_dir():
                raise  # the run folder stays in the staging folder, where `recover` finds it
            os.rename(staging / carry, target / carry)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)
    sync_directory(target.parent)
    return target


def _swap(staging: Path, target: Path, retired: Path) -> None:
    had_one = target.exists()
    if had_one:
        os.rename(target, retired)
    try:
        os.rename(staging, target)
    except BaseException:
        if had_one:
            os.rename(retired, target)
        raise


def recover(target: str | os.PathLike[str], *, carry: str | None = None) -> None:
    """Undo what a killed `replace_folder` of `target` left half done (only leftovers of dead processes)."""
    target = Path(target)
    for retired in _leftovers(target, "old"):
        if not target.exists():
            os.rename(retired, target)  # killed between the two renames: the old version goes back
        else:
            shutil.rmtree(retired, ignore_errors=True)
    for staging in _leftovers(target, "new"):
        if carry is not None and (staging / carry).is_dir() and target.is_dir() and not (target / carry).exists():
            os.rename(staging / carry, target / carry)
        shutil.rmtree(staging, ignore_errors=True)


def replacing_now(target: str | os.PathLike[str]) -> int | None:
    """The pid of a live process that is replacing `target` right now, if any."""
    return next((pid for _, _, pid in _siblings(Path(target)) if pid != os.getpid() and _pid_alive(pid)), None)


def _sibling(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}")


def _leftovers(target: Path, kind: str) -> list[Path]:
    """`target`'s staging (``new``) or retired (``old``) versions whose process is gone (or is this one)."""
    return [path for path, found, pid in _siblings(target)
            if found == kind and (pid == os.getpid() or not _pid_alive(pid))]


def _siblings(target: Path) -> list[tuple[Path, str, int]]:
    """(path, "new" or "old", pid) of every ``.NAME.KIND-PID`` beside `target`."""
    prefix = f".{target.name}."
    try:
        names = sorted(name for name in os.listdir(target.parent) if name.startswith(prefix))
    except OSError:  # no parent folder yet
        return []
    found = []
    for name in names:
        kind, _, pid = name[len(prefix):].partition("-")
        if kind in ("new", "old") and pid.isdigit():
            found.append((target.parent / name, kind, int(pid)))
    return found


# ---------------------------------------------------------------------------- zoo finetune --out


@contextlib.contextmanager
def claim(out: str | os.PathLike[str], *, overwrite: bool = False, resume: bool = False) -> Iterator[Path]:
    """Own output folder `out` for one run and yield its run folder.

    Refused before anything is trained: `out` is a file or a mount point, another run owns it or
    is publishing into it, it holds files zoo did not write or (unless `resume`) a model or an
    earlier run, or it (or the folder around it) cannot be written. `overwrite` allows the contents.
    """
    out = Path(os.path.realpath(out))
    run = out / RUN_FOLDER
    _check_folder(out)
    recover(out, carry=RUN_FOLDER)
    _check_not_busy(out, run)
    if not overwrite:
        _check_contents(out, run, resume=resume)
    _probe_parent(out)
    with hold(run):
        yield run


def publish(model_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Make the files of `model_dir` the model at the top of `out`, keeping `out`'s run folder."""
    model_dir, out = Path(model_dir), Path(out)

    def fill(staging: Path) -> None:
        for item in sorted(model_dir.iterdir()):
            if item.is_file():
                shutil.copyfile(item, staging / item.name)
                with open(staging / item.name, "rb+") as handle:
                    os.fsync(handle.fileno())

    try:
        return replace_folder(out, fill, carry=RUN_FOLDER)
    except OSError as exc:
        raise OutputError(f"{cannot_write('model folder', out, exc)}; the trained model is kept in {model_dir}: "
                          "fix the cause and run the same command with --resume to save it") from exc


def cannot_write(what: str, path: Path, exc: OSError) -> str:
    """One line for a failed write: what, where and the system's reason (full disk, permissions)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hint = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space",
            errno.EROFS: "choose a folder on a writable disk"}.get(exc.errno or 0, "check the folder's permissions")
    return f"cannot write {what} {path}: {reason}; {hint}"


def _check_folder(out: Path) -> None:
    for path in (out, out / RUN_FOLDER):
        if path.exists() and not path.is_dir():
            raise OutputError(f"{path} is a file, not a folder; give --out a new or empty folder")
    if out.is_dir() and os.path.ismount(out):
        raise OutputError(f"{out} is a mount point, which cannot be replaced as a whole; give --out a folder inside it")
    if Path.cwd().resolve().is_relative_to(out):
        raise OutputError(f"{out} holds the current folder, which must not be replaced; give --out a folder of its own")


def _check_not_busy(out: Path, run: Path) -> None:
    owner = owner_of(run)
    if owner is not None:
        raise _in_use(run, owner)
    pid = replacing_now(out)
    if pid is not None:
        raise OutputError(f"another run (pid {pid}) is saving its model into {out} right now; wait for it to finish")


def _check_contents(out: Path, run: Path, *, resume: bool) -> None:
    top = {p.name for p in out.iterdir()} - {RUN_FOLDER} if out.is_dir() else set()
    published = {p.name for p in (run / "best").iterdir()} if (run / "best").is_dir() else set()
    in_run = {p.name for p in run.iterdir() if not p.name.startswith(".")} - RUN_FILES if run.is_dir() else set()
    foreign = sorted((top - published if resume else top) | {f"{RUN_FOLDER}/{name}" for name in in_run})
    shown = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
    if resume and foreign:
        raise OutputError(f"{out} holds files the run being resumed did not write ({shown}); move them away, pass "
                          "--overwrite to replace them, or choose another --out")
    if any(name == "config.json" or name.endswith(MODEL_MARKERS) for name in foreign):
        raise OutputError(f"{out} already holds a model; pass --overwrite to replace it, --resume to continue the run "
                          "that made it, or choose another --out")
    if foreign:
        raise OutputError(f"{out} holds files zoo did not write ({shown}); choose a new or empty --out, or pass "
                          "--overwrite to replace the folder's contents")
    if not resume and (run / "last.pt").exists():
        raise OutputError(f"{out} holds an earlier run ({run / 'last.pt'}); pass --resume to continue it, "
                          "--overwrite to start over, or choose another --out")


def _probe_parent(out: Path) -> None:
    """The model is swapped in beside `out`: its parent must take a new folder."""
    probe = _sibling(out, "new")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe.mkdir()
        probe.rmdir()
    except OSError as exc:
        raise OutputError(cannot_write("into folder", out.parent, exc)) from exc
