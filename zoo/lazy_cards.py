"""Cards registered as a catalogue: listed from a light index, built on first use.

A plugin with thousands of generated cards registers them with
``registrar.register_catalogue(index, make_card)``: `index` holds one `CardSummary` (or the
mapping of one) per card, which is all that listing reads; ``make_card(name)`` builds the full
`ModelCard` the first time a lookup needs it. The built card is checked against its summary, so a
listing never says something the card does not.

With ``names=`` (and ``aliases=``) declared up front, `index` may be a function and is read only
when the catalogue is first needed: a lookup of one of its names or aliases, or a listing that reads
summaries. Until then the catalogue is a set of names: a lookup of any other name, and creating a
model from another family, cost it nothing. Name collisions are found from the declared names, at
registration, as for cards registered one by one; the index is checked against the declaration
when it is read.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .cards import CardSummary, ModelCard
from .errors import CardError, PluginError, ZooError

MakeCard = Callable[[str], ModelCard]
IndexEntries = Iterable[CardSummary | Mapping[str, Any]]
Index = IndexEntries | Callable[[], IndexEntries]  # the entries, or a function returning them

# One lock for every read and build: a make_card may look another card up (hence reentrant), and both are short.
_BUILD_LOCK = threading.RLock()


class Catalogue:
    """One `register_catalogue` call: its names now, its summaries when first read, each card when first built.

    `owner` names the plugin for errors once the catalogue is registered (None: registered directly).
    """

    def __init__(self, index: Index, make_card: MakeCard, names: Iterable[str] | None = None,
                 aliases: Iterable[str] = ()) -> None:
        if not callable(make_card):
            raise CardError(f"register_catalogue(index, make_card): make_card must be a function of a name, "
                            f"got {make_card!r}")
        self._make = make_card
        self._index: Index | None = index
        self._summaries: dict[str, CardSummary] | None = None
        self._alias_of: dict[str, str] = {}
        self._error: ZooError | None = None
        self._cards: dict[str, ModelCard] = {}
        self.owner: tuple[str | None, str] = (None, "register_catalogue")  # (plugin, where) for errors
        if names is None:  # nothing declared: read now, the entries name themselves
            self._summaries = self._read_index()
            self.names: frozenset[str] = frozenset(self._summaries)
            self.aliases: frozenset[str] = frozenset(self._alias_of)
        else:
            self.names = _declared("names", names)
            self.aliases = _declared("aliases", aliases)

    # ------------------------------------------------------------------ reading the index

    @property
    def read(self) -> bool:
        """Whether the index has been read (successfully or not)."""
        return self._summaries is not None or self._error is not None

    def summaries(self) -> Mapping[str, CardSummary]:
        """Every entry's summary by name, the index read and checked on the first call."""
        summaries = self._summaries
        if summaries is not None:
            return summaries
        with _BUILD_LOCK:
            if self._error is not None:
                raise self._error
            if self._summaries is None:
                try:
                    summaries = self._read_index()
                    self._check_declared(summaries)
                except ZooError as exc:
                    self._error = self._blame(exc)
                    raise self._error from None
                self._summaries = summaries
            return self._summaries

    def summary(self, name: str) -> CardSummary:
        return self.summaries()[name]

    def name_of(self, alias: str) -> str:
        """The card an alias names (the alias itself when the index cannot be read: its error comes next)."""
        try:
            self.summaries()
        except ZooError:
            return alias
        return self._alias_of[alias]

    def _read_index(self) -> dict[str, CardSummary]:
        index, self._index = self._index, None  # read once: not kept for the life of the process
        plugin, where = self.owner
        try:
            entries = index() if callable(index) else index
        except ZooError:
            raise
        except Exception as exc:  # a bug in the plugin's code: say whose
            raise PluginError(f"{where} could not read its catalogue index: {type(exc).__name__}: {exc}") from exc
        if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Iterable):
            raise CardError("register_catalogue(index, make_card): index must be a list of zoo.CardSummary "
                            f"or of their mappings (name, task, modality, ...), got {type(entries).__name__}")
        summaries: dict[str, CardSummary] = {}
        for item in entries:
            summary = item if isinstance(item, CardSummary) else CardSummary.from_dict(item)
            if summary.name in summaries:
                raise CardError(f"{summary.name!r} is registered twice", field="name", plugin=plugin)
            summaries[summary.name] = summary
            for alias in summary.aliases:
                if alias in self._alias_of:
                    raise CardError(f"{alias!r} is registered twice", field="aliases", plugin=plugin)
                self._alias_of[alias] = summary.name
        return summaries

    def _check_declared(self, summaries: Mapping[str, CardSummary]) -> None:
        for what, declared, found in (("names", self.names, summaries.keys()), ("aliases", self.aliases,
                                                                                  self._alias_of.keys())):
            if declared != found:
                missing, extra = sorted(declared - found)[:5], sorted(found - declared)[:5]
                raise CardError(f"register_catalogue: the index's {what} differ from the {what} declared: "
                                f"declared but not in the index {missing}, in the index but not declared {extra}",
                                field=what, plugin=self.owner[0])

    def _blame(self, exc: ZooError) -> ZooError:
        if isinstance(exc, CardError) and exc.plugin is None:
            exc.plugin = self.owner[0]
        return exc

    # ------------------------------------------------------------------ building cards

    def built(self, name: str) -> bool:
        return name in self._cards

    def card(self, name: str) -> ModelCard:
        """The card of `name`, built once; errors name the owner."""
        card = self._cards.get(name)
        if card is not None:
            return card
        with _BUILD_LOCK:
            if name not in self._cards:
                self._cards[name] = _build(self.summary(name), self._make, *self.owner)
            return self._cards[name]


class LazyCard:
    """One catalogue entry, as a claim holds it: its summary and card are the catalogue's, read when asked for."""

    __slots__ = ("name", "catalogue")

    def __init__(self, name: str, catalogue: Catalogue) -> None:
        self.name = name
        self.catalogue = catalogue

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, LazyCard) and other.name == self.name
                and other.catalogue is self.catalogue)

    def __hash__(self) -> int:
        return hash((self.name, id(self.catalogue)))

    @property
    def summary(self) -> CardSummary:
        """The entry's summary (reads the catalogue's index the first time one is asked for)."""
        return self.catalogue.summary(self.name)

    @property
    def built(self) -> bool:
        """Whether the card has been built (for tests and diagnostics)."""
        return self.catalogue.built(self.name)

    def card(self) -> ModelCard:
        """The card, built once."""
        return self.catalogue.card(self.name)


def _declared(what: str, names: Iterable[str]) -> frozenset[str]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise CardError(f"register_catalogue: {what} must be a list of names, got {names!r}", field=what)
    listed = list(names)
    found = frozenset(listed)
    if not all(isinstance(name, str) for name in found):
        raise CardError(f"register_catalogue: {what} must be strings, got {sorted(map(repr, found))[:5]}",
                        field=what)
    if len(found) != len(listed):
        twice = sorted({name for name in listed if listed.count(name) > 1})
        raise CardError(f"{twice[0]!r} is registered twice", field="name")
    return found


def _build(summary: CardSummary, make_card: MakeCard, plugin: str | None, where: str) -> ModelCard:
    name = summary.name
    try:
        card = make_card(name)
    except CardError as exc:
        if exc.plugin is None:
            exc.plugin = plugin
        raise
    except ZooError:
        raise
    except Exception as exc:  # a bug in the plugin's code: say whose
        raise PluginError(f"{where} could not build the card of {name!r}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(card, ModelCard):
        raise CardError(f"make_card({name!r}) returned {type(card).__name__}, not a zoo.ModelCard", plugin=plugin)
    built = CardSummary.of(card)
    if built != summary:
        differ = [key for key in ("name", "task", "modality", "family", "aliases", "weights", "default_weights")
                  if getattr(built, key) != getattr(summary, key)]
        index, made = ([getattr(s, key) for key in differ] for s in (summary, built))
        raise CardError(f"ModelCard {name!r}: field(s) {differ} differ from its catalogue index entry "
                        f"(index {index!r}, card {made!r})", field=differ[0] if differ else None, plugin=plugin)
    return card
