"""Plugin discovery: the ``zoo.plugins`` entry-point group, isolated failures, switches.

Each entry point's value is ``module:function``; zoo calls ``function(registry)`` once
per process. What loads is decided from entry-point names alone, before any plugin is
imported, by three environment switches:

``ZOO_PLUGINS_AUTOLOAD=0``   load no plugin unless named in ``ZOO_PLUGINS_ALLOW``
``ZOO_PLUGINS_ALLOW=a,b``    with autoload off, the plugins to load anyway
``ZOO_PLUGINS_BLOCK=a,b``    never load these (by entry-point name)
``ZOO_PLUGINS_STRICT=1``     a plugin that fails raises `PluginError` instead of being isolated

A failing plugin (import error, exception in ``register``, invalid card, even
``SystemExit``) is recorded with its error; the other plugins' models keep working. A
plugin that loads but has entries that cannot be looked up (a name another plugin also
claims, a recipe whose model is missing) stays ``loaded``, with those entries named in its
error text; its other models work. A plugin still loading after `SLOW_PLUGIN_SECONDS` is
named in a warning, so a hanging import can be found and blocked.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import threading
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from ._env import env_flag
from ._imports import import_object
from .errors import CardError, PluginError

if TYPE_CHECKING:
    from .registry import Registry

GROUP = "zoo.plugins"
SLOW_PLUGIN_SECONDS = 3.0  # after this long importing and registering one plugin, say which one
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PluginInfo:
    """What `zoo.list_plugins()` reports for one entry point."""

    name: str
    distribution: str
    version: str
    status: str  # "loaded", "failed" or "disabled"
    error: str | None = None
    models: tuple[str, ...] = ()
    value: str = ""


@dataclass(frozen=True)
class _Candidate:
    name: str
    value: str
    distribution: str
    version: str


_infos: list[PluginInfo] = []


def _env_list(name: str) -> set[str]:
    return {part.strip() for part in os.environ.get(name, "").split(",") if part.strip()}


def _env_flag(name: str, default: bool) -> bool:
    return env_flag(name, default)


def strict_mode() -> bool:
    return _env_flag("ZOO_PLUGINS_STRICT", False)


def discover() -> list[_Candidate]:
    """Entry points of the ``zoo.plugins`` group, plus zoo's own when run from a source tree."""
    found: dict[tuple[str, str], _Candidate] = {}
    for ep in metadata.entry_points(group=GROUP):
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "unknown"
        found.setdefault((ep.name, ep.value), _Candidate(ep.name, ep.value, dist, version))
    if not any(c.distribution == "zoo" for c in found.values()):
        for cand in _source_tree_plugins():
            found.setdefault((cand.name, cand.value), cand)
    return sorted(found.values(), key=lambda c: (c.name, c.distribution))


def _source_tree_plugins() -> list[_Candidate]:
    """zoo's built-in plugins read from ``pyproject.toml`` when zoo is used uninstalled (torch.hub)."""
    root = Path(__file__).resolve().parent.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return []
    import tomllib

    with pyproject.open("rb") as fh:
        data = tomllib.load(fh)
    project = data.get("project", {})
    if project.get("name") != "zoo":
        return []
    package_dirs = data.get("tool", {}).get("setuptools", {}).get("package-dir", {})
    for package, folder in package_dirs.items():
        parent = str((root / folder).parent)
        if package and parent not in sys.path:
            sys.path.append(parent)
    version = str(project.get("version", "source"))
    entries = project.get("entry-points", {}).get(GROUP, {})
    return [_Candidate(name, value, "zoo", version) for name, value in entries.items()]


def _import_function(value: str):
    obj = import_object(value)
    if not callable(obj):
        raise PluginError(f"entry point {value!r} is not callable")
    return obj


def load_plugins(
    registry: "Registry",
    *,
    candidates: Iterable[_Candidate] | None = None,
) -> list[PluginInfo]:
    """Load every enabled plugin into `registry`; returns (and remembers) their status."""
    autoload = _env_flag("ZOO_PLUGINS_AUTOLOAD", True)
    allow, block, strict = _env_list("ZOO_PLUGINS_ALLOW"), _env_list("ZOO_PLUGINS_BLOCK"), strict_mode()
    infos: list[PluginInfo] = []
    for cand in discover() if candidates is None else candidates:
        if cand.name in block or cand.distribution in block:
            infos.append(_info(cand, "disabled", "blocked by ZOO_PLUGINS_BLOCK"))
            continue
        if not autoload and cand.name not in allow and cand.distribution not in allow:
            infos.append(_info(cand, "disabled", "autoload off (ZOO_PLUGINS_AUTOLOAD=0) and not in ZOO_PLUGINS_ALLOW"))
            continue
        infos.append(_load_one(registry, cand, strict))
    infos = _with_problems(infos, registry.problems(), strict)
    _infos[:] = infos
    return infos


def _with_problems(infos: list[PluginInfo], problems: dict[tuple[str, str], list[str]],
                   strict: bool) -> list[PluginInfo]:
    """Name, on each loaded plugin, its entries that cannot be looked up (strict mode: raise)."""
    out = []
    for info in infos:
        found = problems.get((info.name, info.distribution))
        if info.status == "loaded" and found:
            error = f"{len(found)} entr{'y' if len(found) == 1 else 'ies'} cannot be used: " + "; ".join(found)
            if strict:
                raise PluginError(f"plugin {info.name!r} from distribution {info.distribution} {info.version}: {error}")
            info = dataclasses.replace(info, error=error)
        out.append(info)
    return out


@contextlib.contextmanager
def _warn_if_slow(cand: _Candidate) -> Iterator[None]:
    """Log which plugin is loading when it takes longer than `SLOW_PLUGIN_SECONDS`."""
    timer = threading.Timer(
        SLOW_PLUGIN_SECONDS, log.warning,
        args=("zoo: still importing plugin %r from distribution %s after %g s (set ZOO_PLUGINS_BLOCK=%s "
              "to skip it)", cand.name, cand.distribution, SLOW_PLUGIN_SECONDS, cand.name),
    )
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _load_one(registry: "Registry", cand: _Candidate, strict: bool) -> PluginInfo:
    stage = registry._stage(cand.name, cand.distribution)
    try:
        with _warn_if_slow(cand):
            register = _import_function(cand.value)
            register(stage)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # isolate any failure of third-party code, SystemExit included
        if isinstance(exc, CardError) and exc.plugin is None:
            exc.plugin = cand.name
        message = f"{type(exc).__name__}: {exc}"
        if strict:
            raise PluginError(
                f"plugin {cand.name!r} from distribution {cand.distribution} {cand.version} failed: {message}"
            ) from exc
        registry._record_failure(cand.name, cand.distribution, exc, stage.names())
        return _info(cand, "failed", message, tuple(stage.names()))
    return _info(cand, "loaded", None, tuple(registry._merge(stage)))


def _info(cand: _Candidate, status: str, error: str | None, models: tuple[str, ...] = ()) -> PluginInfo:
    return PluginInfo(cand.name, cand.distribution, cand.version, status, error, models, cand.value)


def list_plugins() -> list[PluginInfo]:
    """Status of every discovered plugin: ``loaded``, ``failed`` (with its error) or ``disabled``."""
    from .registry import default_registry

    default_registry()
    return list(_infos)


def _reset() -> None:
    _infos.clear()
