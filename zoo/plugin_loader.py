"""Plugin discovery and loading: the ``zoo.plugins`` entry-point group, isolated failures, switches.

Each entry point's value is ``module:function``; zoo calls ``function(registrar)`` once per
process with a `Registrar` that can only register (docs/plugins.md). The function's signature
is checked before it is called. What loads is decided from entry-point names alone, before any
plugin is imported, by environment switches:

``ZOO_PLUGINS_AUTOLOAD=0``   load no plugin unless named in ``ZOO_PLUGINS_ALLOW``
``ZOO_PLUGINS_ALLOW=a,b``    with autoload off, the plugins to load anyway
``ZOO_PLUGINS_BLOCK=a,b``    never load these (by entry-point name)
``ZOO_PLUGINS_STRICT=1``     a plugin that fails raises `PluginError` instead of being isolated

A failing plugin (import error, a function zoo cannot call with one argument, exception in
``register``, invalid card, even ``SystemExit``) is recorded with its error and registers
nothing; the other plugins' models keep working. A plugin that loads but has entries that
cannot be looked up (a name another plugin also claims, a recipe whose model is missing)
stays ``loaded``, with those entries named in its error text; its other models work. A
plugin still loading after `SLOW_PLUGIN_SECONDS` is named in a warning, so a hanging import
can be found and blocked. The status of every plugin is kept on the registry it loaded into.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import inspect
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Protocol

from ._env import env_flag
from ._imports import import_object
from ._source_tree import DISTRIBUTION, is_zoo_distribution, source_tree_entry_points
from .cards import ModelCard
from .errors import CardError, PluginError
from .lazy_cards import Catalogue, Index
from .plugin_api import Entry, Registrar, check_entry

GROUP = "zoo.plugins"
SLOW_PLUGIN_SECONDS = 3.0  # after this long importing and registering one plugin, say which one
log = logging.getLogger("zoo.plugins")  # the name users configure, whichever module loads plugins

RegisterFunction = Callable[[Registrar], object]


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
class Candidate:
    """An entry point found by discovery, not yet imported."""

    name: str
    value: str
    distribution: str
    version: str


class PluginHost(Protocol):
    """What loading plugins needs of a registry (`zoo.Registry` is one)."""

    def register_plugin(self, plugin: str, distribution: str, entries: Sequence[Entry | Catalogue]) -> list[str]: ...

    def record_failure(self, plugin: str, distribution: str, error: BaseException,
                       entries: Sequence[Entry | Catalogue]) -> list[str]: ...

    def problems(self) -> dict[tuple[str, str], list[str]]: ...

    def read_catalogues(self) -> None: ...

    def record_plugins(self, infos: Sequence[PluginInfo]) -> None: ...


class PluginRegistrar:
    """The `Registrar` a plugin's function receives: it only collects entries.

    They join the registry together once the function has returned, or not at all, so a
    plugin that fails half-way registers nothing. It offers no lookups: a plugin looks models
    up with ``zoo.get_card`` and ``zoo.list_models``.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[Entry | Catalogue] = []

    def register(self, entry: Entry) -> Entry:
        """Add a `ModelCard` or `Recipe`; returns it."""
        self._entries.append(check_entry(entry))
        return entry

    def register_catalogue(self, index: Index, make_card: Callable[[str], ModelCard], *,
                           names: Iterable[str] | None = None, aliases: Iterable[str] = ()) -> None:
        """Add cards listed from `index` and built by ``make_card(name)`` on first use; with `names` (and
        `aliases`) declared, `index` may be a function, read when first needed (`zoo.lazy_cards`)."""
        self._entries.append(Catalogue(index, make_card, names, aliases))


def _env_list(name: str) -> frozenset[str]:
    return frozenset(part.strip() for part in os.environ.get(name, "").split(",") if part.strip())


def discover() -> list[Candidate]:
    """Entry points of the ``zoo.plugins`` group; zoo's own from its source tree when it is not installed.

    zoo counts as not installed when its distribution is missing, or when the modules its entry
    points name cannot be found (the ``*.egg-info`` of an earlier build, left in a checkout that
    torch.hub put on ``sys.path``): then the checkout's ``pyproject.toml`` gives them.
    """
    found: dict[tuple[str, str], Candidate] = {}
    for ep in metadata.entry_points(group=GROUP):
        dist = ep.dist.metadata["Name"] if ep.dist is not None else "unknown"
        version = ep.dist.version if ep.dist is not None else "unknown"
        found.setdefault((ep.name, ep.value), Candidate(ep.name, ep.value, dist, version))
    own = [key for key, cand in found.items() if is_zoo_distribution(cand.distribution)]
    installed = bool(own) and all(_findable(found[key].value) for key in own)
    sources = [] if installed else source_tree_entry_points(GROUP)
    for key in own if sources else ():
        del found[key]
    for source in sources:
        key = (source.name, source.value)
        found.setdefault(key, Candidate(source.name, source.value, DISTRIBUTION, source.version))
    return sorted(found.values(), key=lambda c: (c.name, c.distribution))


def _findable(value: str) -> bool:
    """Whether the top-level package of an entry point's ``module:function`` can be found (nothing is imported)."""
    top = value.partition(":")[0].partition(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class _Switches:
    """The environment switches, read once before any plugin is imported."""

    autoload: bool
    allow: frozenset[str]
    block: frozenset[str]
    strict: bool

    @classmethod
    def read(cls) -> _Switches:
        return cls(env_flag("ZOO_PLUGINS_AUTOLOAD", True), _env_list("ZOO_PLUGINS_ALLOW"),
                   _env_list("ZOO_PLUGINS_BLOCK"), env_flag("ZOO_PLUGINS_STRICT", False))

    def disabled_because(self, cand: Candidate) -> str | None:
        """Why `cand` may not load, or None when it may."""
        names = {cand.name, cand.distribution}
        if names & self.block:
            return "blocked by ZOO_PLUGINS_BLOCK"
        if not self.autoload and not names & self.allow:
            return "autoload off (ZOO_PLUGINS_AUTOLOAD=0) and not in ZOO_PLUGINS_ALLOW"
        return None


def load_plugins(registry: PluginHost, *, candidates: Iterable[Candidate] | None = None) -> list[PluginInfo]:
    """Load every enabled plugin into `registry`; returns their status, which the registry also keeps."""
    switches = _Switches.read()
    infos: list[PluginInfo] = []
    for cand in discover() if candidates is None else candidates:
        reason = switches.disabled_because(cand)
        infos.append(_info(cand, "disabled", reason) if reason else _load_one(registry, cand, switches.strict))
    if switches.strict:
        registry.read_catalogues()  # every index read and checked now, not when first needed
    infos = _with_problems(infos, registry.problems(), switches.strict)
    registry.record_plugins(infos)
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
def _warn_if_slow(cand: Candidate) -> Iterator[None]:
    """Log which plugin is loading when it takes longer than `SLOW_PLUGIN_SECONDS`."""
    timer = threading.Timer(
        SLOW_PLUGIN_SECONDS, log.warning,
        args=("zoo: still importing plugin %r from distribution %s after %g s (set ZOO_PLUGINS_BLOCK=%s to skip it)",
              cand.name, cand.distribution, SLOW_PLUGIN_SECONDS, cand.name),
    )
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _register_function(cand: Candidate) -> RegisterFunction:
    """The entry point's function, checked to be callable with one argument before it is called."""
    obj = import_object(cand.value)
    where = f"plugin {cand.name!r} from distribution {cand.distribution}: entry point {cand.value!r}"
    usage = "zoo calls it with one argument, the registrar: `def register(registry): ...` (see docs/plugins.md)"
    if not callable(obj):
        raise PluginError(f"{where} is not callable; {usage}")
    function: RegisterFunction = obj
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a callable without a readable signature (C code): calling it will tell
        return function
    try:
        signature.bind(None)
    except TypeError:
        raise PluginError(f"{where} takes {signature}, but {usage}") from None
    return function


def _load_one(registry: PluginHost, cand: Candidate, strict: bool) -> PluginInfo:
    registrar = PluginRegistrar()
    try:
        with _warn_if_slow(cand):
            register = _register_function(cand)
            register(registrar)
        names = registry.register_plugin(cand.name, cand.distribution, registrar._entries)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # isolate any failure of third-party code, SystemExit included
        if isinstance(exc, CardError) and exc.plugin is None:
            exc.plugin = cand.name
        message = _describe(exc, registrar)
        if strict:
            raise PluginError(
                f"plugin {cand.name!r} from distribution {cand.distribution} {cand.version} failed: {message}"
            ) from exc
        names = registry.record_failure(cand.name, cand.distribution, exc, registrar._entries)
        return _info(cand, "failed", message, tuple(names))
    return _info(cand, "loaded", None, tuple(names))


def _describe(error: BaseException, registrar: PluginRegistrar) -> str:
    """The error as `zoo plugins` shows it; asking the registrar for a lookup says where lookups are."""
    message = f"{type(error).__name__}: {error}"
    if isinstance(error, AttributeError) and error.obj is registrar:
        message += (" (the registrar a plugin receives only registers; look models up with zoo.get_card "
                    "or zoo.list_models, see docs/plugins.md)")
    return message


def _info(cand: Candidate, status: str, error: str | None, models: tuple[str, ...] = ()) -> PluginInfo:
    return PluginInfo(cand.name, cand.distribution, cand.version, status, error, models, cand.value)
