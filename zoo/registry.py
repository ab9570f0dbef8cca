"""The registry: names to model cards and recipes, with aliases, weight tags and did-you-mean.

One `Registry` object holds what plugins registered. Lookups go through `resolve`,
which turns any name a user may type (``resnet50``, ``resnet50.imagenet1k_v2``, an alias,
a recipe) into a `Resolved`: the card to build, the weights tag and the create options.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .cards import CardSummary, ModelCard, Recipe, canonical_task
from .errors import (
    CardError,
    DuplicateModelError,
    InvalidArgumentError,
    PluginError,
    UnknownModelError,
    UnknownWeightsError,
    ZooError,
)
from .lazy_cards import Catalogue, Index, LazyCard
from .plugin_api import Entry, check_entry
from .plugin_loader import PluginInfo, load_plugins

NOT_A_PLUGIN = ("__main__", "(not a plugin)")  # the claim of an entry registered directly, not by a plugin


@dataclass(frozen=True)
class Claim:
    """One registration of a name, and the plugin that made it.

    `registered` is what was registered: a card, a recipe, or a catalogue entry whose card is
    built when `entry` is first read.
    """

    registered: Entry | LazyCard
    plugin: str
    distribution: str

    @property
    def entry(self) -> Entry:
        """The registered card or recipe (a catalogue entry's card is built here, once)."""
        if isinstance(self.registered, LazyCard):
            return self.registered.card()
        return self.registered


@dataclass(frozen=True)
class Resolved:
    """What a name means: the card (of the base model), the weights tag and recipe options."""

    card: ModelCard
    tag: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[list[str | int], str]:
    """Sort key ordering runs of digits by value, so ``resnet18`` comes before ``resnet101`` (as timm sorts)."""
    parts: list[str | int] = list(_DIGITS.split(name.lower()))
    parts[1::2] = [int(digits) for digits in parts[1::2]]
    return parts, name


def natural_sorted(names: Iterable[str]) -> list[str]:
    return sorted(names, key=natural_key)


class _ClaimTable:
    """Names and aliases to the claims on them; changes are made under one lock.

    Cards and recipes are held one claim each; a catalogue is held whole, by its set of names, and
    the claim on one of its names is made when asked for, so that holding a catalogue of thousands
    costs a set, not thousands of objects (which would also set off full garbage collections).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: dict[str, list[Claim]] = {}
        self._aliases: dict[str, list[Claim]] = {}
        self._catalogues: tuple[tuple[Catalogue, str, str], ...] = ()  # with the plugin and distribution
        self._keys: dict[tuple[str, str], tuple[set[str], set[str]]] = {}  # a source's names and aliases
        self._sorted: list[str] | None = None  # the names in natural order, until the next change

    def add(self, source: tuple[str, str], entries: Sequence[Entry | Catalogue]) -> None:
        """Add every entry of one source (plugin, distribution) or none: a name (or alias) that one source
        claims twice is an error."""
        names, aliases = _keys_of(entries)
        with self._lock:
            taken_names, taken_aliases = self._keys.get(source, (set(), set()))
            for new, taken in ((names, taken_names), (aliases, taken_aliases)):
                seen: set[str] = set(taken)
                for keys in new:
                    twice = seen & keys if isinstance(keys, frozenset) else seen.intersection(keys)
                    if twice:
                        raise CardError(f"{min(twice)!r} is registered twice", field="name", plugin=source[0])
                    seen.update(keys)
            claims = [Claim(entry, *source) for entry in entries if not isinstance(entry, Catalogue)]
            for claim in claims:
                self._names[claim.registered.name] = [*self._names.get(claim.registered.name, ()), claim]
                for alias in getattr(claim.registered, "aliases", ()):
                    self._aliases[alias] = [*self._aliases.get(alias, ()), claim]  # new lists: readers see
                    # one whole or the other, never one half-changed
            catalogues = tuple((entry, *source) for entry in entries if isinstance(entry, Catalogue))
            self._catalogues += catalogues
            self._keys[source] = (taken_names.union(*names), taken_aliases.union(*aliases))
            self._sorted = None

    def get(self, name: str) -> Sequence[Claim]:
        """The claims on a name, or else on an alias (read without the lock: what it reads is replaced, never
        changed)."""
        catalogues = self._catalogues
        claims = self._names.get(name, [])
        held = [Claim(LazyCard(name, cat), plugin, dist) for cat, plugin, dist in catalogues if name in cat.names]
        if claims or held:
            return [*claims, *held] if held else claims
        claims = self._aliases.get(name, [])
        held = [Claim(LazyCard(cat.name_of(name), cat), plugin, dist)
                for cat, plugin, dist in catalogues if name in cat.aliases]
        return [*claims, *held] if held else claims

    def names(self) -> list[str]:
        """Every name (not aliases), in natural order."""
        with self._lock:
            if self._sorted is None:
                self._sorted = natural_sorted({*self._names, *(n for cat, _, _ in self._catalogues
                                                                for n in cat.names)})
            return list(self._sorted)

    def contested(self) -> list[str]:
        """The names and aliases that more than one source claims."""
        with self._lock:
            found: set[str] = set()
            for table, key in ((self._names, "names"), (self._aliases, "aliases")):
                found.update(name for name, claims in table.items() if len(claims) > 1)
                seen = set(table)
                for cat, _, _ in self._catalogues:
                    keys: frozenset[str] = getattr(cat, key)
                    found |= keys & seen
                    seen |= keys
            return sorted(found)

    def catalogues(self) -> tuple[tuple[Catalogue, str, str], ...]:
        """Every catalogue, with the plugin and distribution that registered it."""
        return self._catalogues

    def recipes(self) -> list[str]:
        """The names of the recipes."""
        with self._lock:
            return [name for name, claims in self._names.items()
                    if any(isinstance(claim.registered, Recipe) for claim in claims)]


def _keys_of(entries: Sequence[Entry | Catalogue]) -> tuple[list[Iterable[str]], list[Iterable[str]]]:
    """The names and the aliases of entries, as lists of groups (a catalogue's set is one group)."""
    cards = [entry for entry in entries if not isinstance(entry, Catalogue)]
    catalogues = [entry for entry in entries if isinstance(entry, Catalogue)]
    names: list[Iterable[str]] = [_once([entry.name for entry in cards])]
    aliases: list[Iterable[str]] = [_once([alias for entry in cards for alias in getattr(entry, "aliases", ())])]
    return names + [c.names for c in catalogues], aliases + [c.aliases for c in catalogues]


def _once(keys: list[str]) -> list[str]:
    """`keys`, checked to name nothing twice."""
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            raise CardError(f"{key!r} is registered twice", field="name")
        seen.add(key)
    return keys


class Registry:
    """Names to cards and recipes, and the status of the plugins that registered them.

    Users call `register` and the lookups; the plugin loader calls `register_plugin`,
    `record_failure` and `record_plugins`. Safe from several threads at once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards the failures and the plugin status
        self._claims = _ClaimTable()
        self._failed_names: dict[str, tuple[str, BaseException]] = {}
        self._failures: list[tuple[str, str, BaseException]] = []
        self._plugins: tuple[PluginInfo, ...] = ()
        self._summaries: dict[int, CardSummary] = {}  # id of a registered card -> its summary, made once

    # ------------------------------------------------------------------ registering

    def register(self, entry: Entry) -> Entry:
        """Add a `ModelCard` or `Recipe` directly (not from a plugin). A name registered twice this way is an error."""
        self._claims.add(NOT_A_PLUGIN, [check_entry(entry)])
        return entry

    def register_catalogue(self, index: Index, make_card: Callable[[str], ModelCard], *,
                           names: Iterable[str] | None = None, aliases: Iterable[str] = ()) -> None:
        """Add cards listed from `index` (one `CardSummary` or its mapping each) and built by
        ``make_card(name)`` when first looked up; as with `register`, a name registered twice is an error.
        With `names` (and `aliases`) declared, `index` may be a function, read when first needed
        (`zoo.lazy_cards`)."""
        self.register_plugin(*NOT_A_PLUGIN, [Catalogue(index, make_card, names, aliases)])

    def register_plugin(self, plugin: str, distribution: str, entries: Sequence[Entry | Catalogue]) -> list[str]:
        """Add the entries one plugin registered, all or none; returns their names."""
        checked = [entry if isinstance(entry, Catalogue) else check_entry(entry) for entry in entries]
        for entry in checked:
            if isinstance(entry, Catalogue):
                entry.owner = (None if (plugin, distribution) == NOT_A_PLUGIN else plugin,
                               f"plugin {plugin!r} from {distribution}")
        self._claims.add((plugin, distribution), checked)
        return _names_of(checked)

    def record_failure(self, plugin: str, distribution: str, error: BaseException,
                       entries: Sequence[Entry | Catalogue]) -> list[str]:
        """Remember a plugin that failed: its entries' names then raise with `error`. Returns the names."""
        names = _names_of(entries)
        with self._lock:
            self._failures.append((plugin, distribution, error))
            for name in names:
                self._failed_names[name] = (f"{plugin!r} from {distribution}", error)
        return names

    def record_plugins(self, infos: Sequence[PluginInfo]) -> None:
        """Keep the status of the plugins loaded into this registry (what `plugins` returns)."""
        with self._lock:
            self._plugins = tuple(infos)

    def plugins(self) -> list[PluginInfo]:
        """Status of each plugin loaded into this registry: ``loaded``, ``failed`` or ``disabled``."""
        with self._lock:
            return list(self._plugins)

    def problems(self) -> dict[tuple[str, str], list[str]]:
        """Entries that cannot be looked up, by (plugin, distribution) of each claim.

        A name two plugins claim is listed for both; a recipe whose model is missing, claimed
        twice or from a failed plugin is listed for the recipe's plugin. Every other name works.
        """
        found: dict[tuple[str, str], list[str]] = {}
        contested = self._claims.contested()
        for name in contested + [name for name in self._claims.recipes() if name not in contested]:
            try:
                if name in contested or not self._in_unread_catalogue(name):
                    self.summary(name)  # builds no catalogue card
            except ZooError as exc:
                for claim in self._claims.get(name):
                    found.setdefault((claim.plugin, claim.distribution), []).append(f"{name!r}: {exc}")
        return found

    def read_catalogues(self) -> None:
        """Read every catalogue's index now (strict plugin loading); the first that fails raises `PluginError`."""
        for catalogue, plugin, distribution in self._claims.catalogues():
            try:
                catalogue.summaries()
            except ZooError as exc:
                raise PluginError(f"plugin {plugin!r} from distribution {distribution}: its catalogue index: "
                                  f"{exc}") from exc

    def _in_unread_catalogue(self, name: str) -> bool:
        """Whether `name` (a recipe) ends at a card of a catalogue not read yet: its tag is checked then, not now."""
        claim, _, _ = self._follow_recipes(name)
        return isinstance(claim.registered, LazyCard) and not claim.registered.catalogue.read

    # ------------------------------------------------------------------ looking up

    def _only_claim(self, name: str) -> Claim:
        """The one claim on a name or alias: unknown and twice-claimed names raise."""
        claims = self._claims.get(name)
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
            return self._only_claim(name)
        except UnknownModelError as exc:
            if recipe is None:
                raise
            owner = self._only_claim(recipe)
            raise UnknownModelError(
                f"recipe {recipe!r} (plugin {owner.plugin!r} from {owner.distribution}) is built on {name!r}, "
                f"which no installed plugin registers. Install the plugin that provides {name!r}, or block "
                f"this one with ZOO_PLUGINS_BLOCK={owner.plugin}.", name=name, suggestions=exc.suggestions,
            ) from exc

    def _unknown(self, name: str) -> Exception:
        if name in self._failed_names:
            where, error = self._failed_names[name]
            failed_plugin = PluginError(f"model {name!r} comes from plugin {where}, which failed to load: {error}")
            failed_plugin.__cause__ = error
            return failed_plugin
        close = difflib.get_close_matches(name, self.names(), n=5, cutoff=0.6)
        close += [n for n in self.names() if name.lower() in n.lower() and n not in close][: 5 - len(close)]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        failed = "; ".join(f"plugin {p!r} from {d} failed: {e}" for p, d, e in self._failures)
        failed = f" Some plugins failed to load ({failed}); see `zoo plugins`." if failed else ""
        err = UnknownModelError(
            f"unknown model {name!r}.{hint}{failed}{self._disabled_hint()} `zoo list` shows every model.",
            name=name, suggestions=close,
        )
        if len(self._failures) == 1:
            err.__cause__ = self._failures[0][2]
        return err

    def _disabled_hint(self) -> str:
        """What an unknown name may be missing: the plugins the environment switches kept from loading."""
        disabled = [info for info in self.plugins() if info.status == "disabled"]
        if not disabled:
            return ""
        names = ",".join(info.name for info in disabled)
        reasons = "; ".join(sorted({info.error or "disabled" for info in disabled}))
        return (f" Plugins not loaded: {names} ({reasons}); load them with ZOO_PLUGINS_ALLOW={names} "
                "or unset the switch.")

    def resolve(self, name: str) -> Resolved:
        """Resolve a name, alias, recipe or ``name.tag`` to the card to build and its options."""
        if not isinstance(name, str) or not name:
            raise UnknownModelError(f"a model name must be a non-empty string, got {name!r}", name=str(name))
        claim, tag, recipes = self._follow_recipes(name)
        card = _card(claim.entry)
        _check_tag(card.name, tag, card.weights)
        if not recipes:
            return Resolved(card=card, tag=tag or None)
        options: dict[str, Any] = {}
        required: tuple[str, ...] = ()
        for recipe in recipes:  # outermost first: its options win
            options = {**recipe.options, **options}
            required = tuple(dict.fromkeys((*required, *recipe.required)))
        outer = recipes[0]
        card = dataclasses.replace(card, name=outer.name, description=outer.description or card.description,
                                   aliases=(), recipe=outer)
        return Resolved(card=card, tag=tag or None, options=options, required=required)

    def _follow_recipes(self, name: str) -> tuple[Claim, str, list[Recipe]]:
        """The claim of the card a name ends at, the weights tag, and the recipes passed on the way (outermost
        first). Builds no catalogue card."""
        seen: list[str] = []
        recipes: list[Recipe] = []
        while True:
            base, _, tag = name.partition(".")
            if base in seen:
                raise CardError(f"recipes loop: {' -> '.join(seen + [base])}", field="model")
            seen.append(base)
            claim = self._target(base, recipe=seen[-2] if len(seen) > 1 else None)
            entry = claim.registered
            if not isinstance(entry, Recipe):
                return claim, tag, recipes
            recipes.append(entry)
            name = entry.model if not tag else f"{entry.model.partition('.')[0]}.{tag}"

    def get_card(self, name: str) -> ModelCard:
        """The card for a name; with a tag or a recipe's tag, `default_weights` is that tag."""
        resolved = self.resolve(name)
        if resolved.tag and resolved.tag != resolved.card.default_weights:
            return dataclasses.replace(resolved.card, default_weights=resolved.tag)
        return resolved.card

    def summary(self, name: str) -> CardSummary:
        """What listing reads of a name, as `get_card` would give it, without building a catalogue's card.

        Raises as `get_card` does for unknown names, tags and names that cannot be looked up.
        """
        if not isinstance(name, str) or not name:
            raise UnknownModelError(f"a model name must be a non-empty string, got {name!r}", name=str(name))
        claim, tag, recipes = self._follow_recipes(name)
        entry = claim.registered
        summary = entry.summary if isinstance(entry, LazyCard) else self._summary_of(_card(entry))
        _check_tag(summary.name, tag, summary.weights)
        if recipes:
            summary = dataclasses.replace(summary, name=recipes[0].name, aliases=(), recipe=recipes[0])
        if tag and tag != summary.default_weights:
            summary = dataclasses.replace(summary, default_weights=tag)
        return summary

    def _summary_of(self, card: ModelCard) -> CardSummary:
        """A registered card's summary (kept: the card is too, by its claim, so its id stays its own)."""
        summary = self._summaries.get(id(card))
        if summary is None:
            summary = self._summaries[id(card)] = CardSummary.of(card)
        return summary

    def names(self) -> list[str]:
        """Every registered model and recipe name (not aliases), in natural order."""
        return self._claims.names()

    def __contains__(self, name: object) -> bool:
        """Whether a name, alias or ``name.tag`` is registered; never raises.

        A registered name that cannot be used (two plugins claim it, a recipe's model is
        missing) is in the registry: looking it up raises the error that says why.
        """
        if not isinstance(name, str):
            return False
        base, _, tag = name.partition(".")
        return any(not tag or tag in self._weight_tags(claim.registered) for claim in self._claims.get(base))

    def _weight_tags(self, entry: Entry | LazyCard) -> Mapping[str, Any]:
        """The weights of a card, or of the card a recipe is built on (none when that cannot be looked up)."""
        if isinstance(entry, ModelCard):
            return entry.weights
        try:
            return entry.summary.weights if isinstance(entry, LazyCard) else self.summary(entry.model).weights
        except ZooError:
            return {}

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def list_models(
        self,
        pattern: str | Sequence[str] | None = None,
        *,
        exclude: str | Sequence[str] | None = None,
        task: str | None = None,
        modality: str | None = None,
        family: str | None = None,
        pretrained: bool = False,
    ) -> list[str]:
        """Names matching shell wildcards and filters, in natural order (``resnet18`` before ``resnet101``).

        `pattern` and `exclude` are each a wildcard or a list of them: a name is listed when it
        matches any `pattern` (all names when None) and no `exclude` pattern. With
        ``pretrained=True`` only models with weights are listed, and each set of weights also
        appears as ``name.tag`` (the patterns see that whole name). A name that cannot be looked
        up (two plugins claim it, or a recipe's model is missing) is listed only when no filter
        is given; looking it up raises the error, and `zoo plugins` shows it.
        """
        patterns = _patterns("pattern", pattern)
        excluded = _patterns("exclude", exclude) or ()
        for key, value in (("task", task), ("modality", modality), ("family", family)):
            if value is not None and not isinstance(value, str):
                raise InvalidArgumentError(f"list_models: {key} must be a string, got {value!r}")
        if not isinstance(pretrained, bool):
            raise InvalidArgumentError(f"list_models: pretrained must be True or False, got {pretrained!r}")
        if task is not None:
            task = canonical_task(task, stacklevel=3)  # warns at the caller of zoo.list_models
        filters = {"task": task, "modality": modality, "family": family}
        unfiltered = all(value is None for value in filters.values())
        out: list[str] = []
        if unfiltered and not pretrained:
            out = self.names()  # every name is listed: no summary needs reading
        else:
            for name in self.names():
                try:
                    card: CardSummary | None = self.summary(name)
                except ZooError:
                    card = None
                if card is None and unfiltered or card is not None and _matches(card, **filters):
                    out += _listed(name, card, pretrained)
        out = [name for name in out
               if (patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns))
               and not any(fnmatch.fnmatchcase(name, p) for p in excluded)]
        return natural_sorted(out) if pretrained else out  # names come sorted; ``name.tag``s need sorting in

    def entry(self, name: str) -> Entry:
        """The registered card or recipe itself (no recipe resolution)."""
        return self.claim(name).entry

    def claim(self, name: str) -> Claim:
        """The claim on a name (``name.tag`` too): its entry and the plugin that registered it."""
        return self._only_claim(name.partition(".")[0])

    def owner(self, name: str) -> Claim:
        """Deprecated spelling of `claim` (it returns a claim, not an owner); removed in the next release."""
        warnings.warn("Registry.owner() is deprecated: use Registry.claim(), which returns the same Claim",
                      DeprecationWarning, stacklevel=2)
        return self.claim(name)


def _names_of(entries: Sequence[Entry | Catalogue]) -> list[str]:
    """The names of entries, a catalogue's included, in natural order."""
    return natural_sorted([name for entry in entries
                           for name in (entry.names if isinstance(entry, Catalogue) else (entry.name,))])


def _patterns(key: str, value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """`list_models`'s `pattern` or `exclude` as a tuple of wildcards (None: not given)."""
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidArgumentError(f"list_models: {key} must be a wildcard string or a list of them, got {value!r}")


def _check_tag(name: str, tag: str, weights: Mapping[str, Any]) -> None:
    if tag and tag not in weights:
        known = ", ".join(sorted(weights)) or "none"
        raise UnknownWeightsError(f"model {name!r} has no weights {tag!r}; its weights are: {known}")


def _card(entry: Entry) -> ModelCard:
    if not isinstance(entry, ModelCard):
        raise TypeError(f"expected a ModelCard, got {type(entry).__name__}")  # recipes are followed first
    return entry


def _matches(card: CardSummary, **filters: str | None) -> bool:
    return all(value is None or getattr(card, key) == value for key, value in filters.items())


def _listed(name: str, card: CardSummary | None, pretrained: bool) -> list[str]:
    """How `list_models` lists a name: with ``pretrained``, only with weights, and a model's ``name.tag`` too."""
    if not pretrained:
        return [name]
    if card is None or not card.weights:
        return []
    return [name] if card.recipe else [name] + [f"{name}.{tag}" for tag in sorted(card.weights)]


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
    registry = _loading = Registry()
    try:
        load_plugins(registry)
    finally:
        _loading = None
    _default = registry
    return registry


def reset_default_registry() -> None:
    """Forget the process-wide registry and its plugin status; the next lookup loads plugins again (for tests)."""
    global _default
    with _LOAD_LOCK:
        _default = None
