"""Cards registered as a catalogue: listed from a light index, built on first use.

A plugin with thousands of generated cards registers them with
``registrar.register_catalogue(index, make_card)``: `index` holds one `CardSummary` (or the
mapping of one) per card, which is all that listing reads; ``make_card(name)`` builds the full
`ModelCard` the first time a lookup needs it. The built card is checked against its summary, so a
listing never says something the card does not.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .cards import CardSummary, ModelCard
from .errors import CardError, PluginError, ZooError

MakeCard = Callable[[str], ModelCard]

# One lock for every build: a make_card may look another card up (hence reentrant), and builds are short.
_BUILD_LOCK = threading.RLock()


class LazyCard:
    """One catalogue entry: its summary now, its card when first asked for (then kept)."""

    __slots__ = ("summary", "_make", "_card")

    def __init__(self, summary: CardSummary, make_card: MakeCard) -> None:
        self.summary = summary
        self._make = make_card
        self._card: ModelCard | None = None

    @property
    def name(self) -> str:
        return self.summary.name

    @property
    def built(self) -> bool:
        """Whether the card has been built (for tests and diagnostics)."""
        return self._card is not None

    def card(self, plugin: str | None, where: str) -> ModelCard:
        """The card, built once; errors name `plugin` (an entry-point name; None for a direct registration)."""
        card = self._card
        if card is not None:
            return card
        with _BUILD_LOCK:
            if self._card is None:
                self._card = _build(self.summary, self._make, plugin, where)
            return self._card


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


def lazy_cards(index: Iterable[CardSummary | Mapping[str, Any]], make_card: MakeCard) -> list[LazyCard]:
    """The catalogue's entries, each summary checked now (a bad one is the plugin's error at load)."""
    if not callable(make_card):
        raise CardError(f"register_catalogue(index, make_card): make_card must be a function of a name, "
                        f"got {make_card!r}")
    if isinstance(index, (str, bytes, Mapping)) or not isinstance(index, Iterable):
        raise CardError("register_catalogue(index, make_card): index must be a list of zoo.CardSummary "
                        f"or of their mappings (name, task, modality, ...), got {type(index).__name__}")
    return [LazyCard(item if isinstance(item, CardSummary) else CardSummary.from_dict(item), make_card)
            for item in index]
