"""The registry: names to model cards and recipes, with aliases, weight tags and did-you-mean.

One `Registry` object holds what plugins registered. Lookups go through `resolve`,
which turns any name a user may type (``resnet50``, ``resnet50.imagenet1k_v2``, an alias,
a recipe) into a `Resolved`: the card to build, the weights tag and the create options.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import threading
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Union

from .cards import ModelCard, Recipe
from .errors import CardError, DuplicateModelError, PluginError, UnknownModelError, UnknownWeightsError, ZooError

Entry = Union[ModelCard, Recipe]


@dataclass(frozen=True)
class Claim:
    """One registration of a name, and the plugin that made it."""

    entry: Entry
    plugin: str
    distribution: str


@dataclass(frozen=True)
class Resolved:
    """What a name means: the card (of the base model), the weights tag and recipe options."""

    card: ModelCard
    tag: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()


class Registry:
    """Names to cards and recipes. Plugins call `register`; users call the lookups.

    Registering is safe from several threads at once (one lock guards every change).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[str, list[Claim]] = {}
        self._aliases: dict[str, list[Claim]] = {}
        self._failed_names: dict[str, tuple[str, BaseException]] = {}
        self._failures: list[tuple[str, str, BaseException]] = []
        self._source = ("__main__", "(not a plugin)")

    # ------------------------------------------------------------------ registering

    def register(self, entry: Entry) -> Entry:
        """Add a `ModelCard` or `Recipe`. A name registered twice by one plugin is an error."""
        if not isinstance(entry, (ModelCard, Recipe)):
            raise CardError(f"register() takes a zoo.ModelCard or zoo.Recipe, got {type(entry).__name__}",
                            plugin=self._source[0])
        plugin, dist = self._source
        claim = Claim(entry, plugin, dist)
        names = [(entry.name, self._claims)] + [(alias, self._aliases) for alias in getattr(entry, "aliases", ())]
        with self._lock:
            for name, table in names:
                if any(c.plugin == plugin for c in table.get(name, ())):
                    raise CardError(f"{name!r} is registered twice", field="name", plugin=plugin)
            for name, table in names:
                table.setdefault(name, []).append(claim)
        return entry

    def _stage(self, plugin: str, distribution: str) -> "Registry":
        """A scratch registry for one plugin: merged only when the whole plugin registers cleanly."""
        stage = Registry()
        stage._source = (plugin, distribution)
        return stage

    def _merge(self, stage: "Registry") -> list[str]:
        with self._lock:
            for table, other in ((self._claims, stage._claims), (self._aliases, stage._aliases)):
                for name, claims in other.items():
                    table.setdefault(name, []).extend(claims)
        return stage.names()

    def _record_failure(self, plugin: str, distribution: str, error: BaseException, names: list[str]) -> None:
        with self._lock:
            self._failures.append((plugin, distribution, error))
            for name in names:
                self._failed_names[name] = (f"{plugin!r} from {distribution}", error)

    def problems(self) -> dict[tuple[str, str], list[str]]:
        """Entries that cannot be looked up, by (plugin, distribution) of each claim.

        A name two plugins claim is listed for both; a recipe whose model is missing, claimed
        twice or from a failed plugin is listed for the recipe's plugin. Every other name works.
        """
        with self._lock:
            tables = [list(self._claims.items()), list(self._aliases.items())]
        found: dict[tuple[str, str], list[str]] = {}
        for name, claims in (item for table in tables for item in table):
            if len(claims) == 1 and not isinstance(claims[0].entry, Recipe):
                continue
            try:
                self.resolve(name)
            except ZooError as exc:
                for claim in claims:
                    found.setdefault((claim.plugin, claim.distribution), []).append(f"{name!r}: {exc}")
        return found

    # ------------------------------------------------------------------ looking up

    def _claim(self, name: str) -> Claim:
        claims = self._claims.get(name) or self._aliases.get(name)
        if not claims:
            raise self._unknown(name)
        if len(claims) > 1:
            owners = ", ".join(f"plugin {c.plugin!r} from {c.distribution}" for c in claims)
            raise DuplicateModelError(
                f"model name {name!r} is claimed by more than one plugin: {owners}. "
                "Uninstall or block one of them (ZOO_PLUGINS_BLOCK=name)."
            )
        return claims[0]

    def _target(self, name: str, *, recipe: str | None) -> Claim:
        """The claim of `name`; when a recipe points at it, an unknown name is blamed on the recipe."""
        try:
            return self._claim(name)
        except UnknownModelError as exc:
            if recipe is None:
                raise
            owner = self._claim(recipe)
            raise UnknownModelError(
                f"recipe {recipe!r} (plugin {owner.plugin!r} from {owner.distribution}) is built on {name!r}, "
                f"which no installed plugin registers. Install the plugin that provides {name!r}, or block "
                f"this one with ZOO_PLUGINS_BLOCK={owner.plugin}.", name=name, suggestions=exc.suggestions,
            ) from exc

    def _unknown(self, name: str) -> Exception:
        if name in self._failed_names:
            where, error = self._failed_names[name]
            err = PluginError(f"model {name!r} comes from plugin {where}, which failed to load: {error}")
            err.__cause__ = error
            return err
        close = difflib.get_close_matches(name, self.names(), n=5, cutoff=0.6)
        close += [n for n in self.names() if name.lower() in n.lower() and n not in close][: 5 - len(close)]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        failed = "; ".join(f"plugin {p!r} from {d} failed: {e}" for p, d, e in self._failures)
        failed = f" Some plugins failed to load ({failed}); see `zoo plugins`." if failed else ""
        err = UnknownModelError(
            f"unknown model {name!r}.{hint}{failed} `zoo list` shows every model.", name=name, suggestions=close
        )
        if len(self._failures) == 1:
            err.__cause__ = self._failures[0][2]
        return err

    def resolve(self, name: str) -> Resolved:
        """Resolve a name, alias, recipe or ``name.tag`` to the card to build and its options."""
        if not isinstance(name, str) or not name:
            raise UnknownModelError(f"a model name must be a non-empty string, got {name!r}", name=str(name))
        seen: list[str] = []
        options: dict[str, Any] = {}
        required: tuple[str, ...] = ()
        recipe: Recipe | None = None
        while True:
            base, _, tag = name.partition(".")
            if base in seen:
                raise CardError(f"recipes loop: {' -> '.join(seen + [base])}", field="model")
            seen.append(base)
            entry = self._target(base, recipe=seen[-2] if len(seen) > 1 else None).entry
            if isinstance(entry, Recipe):
                recipe = recipe or entry
                options = {**entry.options, **options}
                required = tuple(dict.fromkeys(required + entry.required))
                name = entry.model if not tag else f"{entry.model.partition('.')[0]}.{tag}"
                continue
            card = entry
            break
        if tag and tag not in card.weights:
            known = ", ".join(sorted(card.weights)) or "none"
            raise UnknownWeightsError(f"model {card.name!r} has no weights {tag!r}; its weights are: {known}")
        if recipe is not None:
            card = dataclasses.replace(
                card, name=recipe.name, description=recipe.description or card.description,
                aliases=(), recipe=recipe,
            )
        return Resolved(card=card, tag=tag or None, options=options, required=required)

    def get_card(self, name: str) -> ModelCard:
        """The card for a name; with a tag or a recipe's tag, `default_weights` is that tag."""
        resolved = self.resolve(name)
        if resolved.tag and resolved.tag != resolved.card.default_weights:
            return dataclasses.replace(resolved.card, default_weights=resolved.tag)
        return resolved.card

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._claims)

    def __contains__(self, name: str) -> bool:
        try:
            self.resolve(name)
        except (UnknownModelError, UnknownWeightsError, PluginError):
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def list_models(
        self,
        pattern: str | None = None,
        *,
        task: str | None = None,
        modality: str | None = None,
        family: str | None = None,
        pretrained: bool = False,
    ) -> list[str]:
        """Sorted names matching a shell wildcard and filters.

        With ``pretrained=True`` only models with weights are listed, and each set of
        weights also appears as ``name.tag``. A name that cannot be looked up (two plugins
        claim it, or a recipe's model is missing) is listed only when no filter is given;
        looking it up raises the error, and `zoo plugins` shows it.
        """
        filters = {"task": task, "modality": modality, "family": family}
        out = []
        for name in self.names():
            try:
                card = self.get_card(name)
            except ZooError:
                card = None
            if card is None:
                if pretrained or any(value is not None for value in filters.values()):
                    continue
            elif not _matches(card, **filters):
                continue
            if pretrained:
                if not card.weights:
                    continue
                tags = [card.default_weights] if card.recipe else sorted(card.weights)
                candidates = [name] + [f"{name}.{t}" for t in tags if t and not card.recipe]
            else:
                candidates = [name]
            out += [c for c in candidates if pattern is None or fnmatch.fnmatchcase(c, pattern)]
        return sorted(out)

    def entry(self, name: str) -> Entry:
        """The registered card or recipe itself (no recipe resolution)."""
        return self._claim(name.partition(".")[0]).entry

    def owner(self, name: str) -> Claim:
        """Which plugin registered a name."""
        return self._claim(name.partition(".")[0])


def _matches(card: ModelCard, **filters: str | None) -> bool:
    return all(value is None or getattr(card, key) == value for key, value in filters.items())


_default: Registry | None = None
_loading: Registry | None = None  # set while the thread holding _LOAD_LOCK loads plugins
_LOAD_LOCK = threading.RLock()


def default_registry() -> Registry:
    """The process-wide registry, with plugins loaded on first use: once, whichever threads ask.

    A plugin whose `register` looks models up (``zoo.list_models()``) gets the registry as
    loaded so far; plugins are not loaded again.
    """
    registry = _default
    if registry is not None:
        return registry
    with _LOAD_LOCK:
        if _default is not None:
            return _default
        if _loading is not None:  # a plugin's register calling back into zoo, in this thread
            return _loading
        return _load_default()


def _load_default() -> Registry:
    global _default, _loading
    from .plugins import load_plugins

    registry = _loading = Registry()
    try:
        load_plugins(registry)
    finally:
        _loading = None
    _default = registry
    return registry


def reset_default_registry() -> None:
    """Forget the process-wide registry so the next lookup discovers plugins again (for tests)."""
    global _default
    with _LOAD_LOCK:
        _default = None
        from . import plugins

        plugins._reset()
