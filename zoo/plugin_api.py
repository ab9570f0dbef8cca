"""The contract between zoo and its plugins, and its version (docs/plugins.md).

A plugin is an entry point in the ``zoo.plugins`` group naming a function that takes one
argument, a `Registrar`, and registers `ModelCard`s and `Recipe`s with it. That is all a
plugin may rely on; anything else it needs it reads through zoo's public functions
(``zoo.get_card``, ``zoo.list_models``).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from .cards import ModelCard, Recipe
from .errors import CardError
from .lazy_cards import Index

PLUGIN_API_VERSION = 1
"""Bumped when something a plugin uses changes; a change warns for one release first."""

Entry = ModelCard | Recipe


class Registrar(Protocol):
    """What a plugin's ``register`` function receives: it can register entries, nothing else."""

    def register(self, entry: Entry) -> Entry:
        """Add a `ModelCard` or `Recipe`; returns it. A name registered twice by one plugin is an error."""
        ...

    def register_catalogue(self, index: Index, make_card: Callable[[str], ModelCard], *,
                           names: Iterable[str] | None = None, aliases: Iterable[str] = ()) -> None:
        """Add many cards, listed from `index` (one `CardSummary` or its mapping per card) and each built by
        ``make_card(name)`` when first looked up (docs/plugins.md, "Large catalogues").

        With every card name in `names` and every alias in `aliases`, `index` may be a function: it is
        called, and its entries checked against the declared names, when the catalogue is first needed (a
        lookup of one of its names or aliases, or a listing that reads summaries). Collisions with other
        cards are found from the declared names, at registration."""
        ...


def check_entry(entry: object) -> Entry:
    """`entry` if it is something a registrar takes, else the error that says what is."""
    if not isinstance(entry, (ModelCard, Recipe)):
        raise CardError(f"register() takes a zoo.ModelCard or zoo.Recipe, got {type(entry).__name__}")
    return entry
