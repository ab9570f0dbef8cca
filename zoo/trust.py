"""The trust rule: zoo imports only code that an installed plugin's card names.

A card names code as ``"package.module:function"`` strings: its builder, its weights' key maps and
converters and readers in ``extra`` (such as ``hf_config_to_kwargs`` and ``saved_folder_reader``).
Cards come from plugins the user installed, so those strings are trusted. Files a user downloads or
receives (a saved model's ``config.json``, a Hub repo, a checkpoint) are data: a string in them is
imported only if a registered card names the same code. Everything that turns a string into an import in zoo goes
through `check_registered` first.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

from .cards import ModelCard
from .errors import UntrustedCodeError, ZooError
from .lazy_cards import LazyCard
from .registry import Registry, default_registry

_CODE_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def _code_named_by(card: ModelCard) -> Iterator[str]:
    yield card.builder
    for weights in card.weights.values():
        if weights.key_map:
            yield weights.key_map
    for value in card.extra.values():
        if isinstance(value, str) and _CODE_SPEC.match(value):
            yield value


def registered_code(registry: Registry, *, unbuilt: bool = True) -> frozenset[str]:
    """Every ``module:function`` string that a registered card names.

    With ``unbuilt=False``, only the cards already built: a catalogue's cards (`zoo.lazy_cards`) that
    no lookup has needed yet are left out, so that a check finding its code there builds nothing.
    """
    return frozenset(spec for card in registered_cards(registry, unbuilt=unbuilt) for spec in _code_named_by(card))


def registered_cards(registry: Registry, *, unbuilt: bool = True) -> Iterator[ModelCard]:
    """Every registered card that can be looked up (a catalogue's cards are built here, unless `unbuilt` is
    False: then those not built yet are left out). A name two plugins claim, or a card that fails to build,
    is skipped: neither is trusted through it."""
    for name in registry.names():
        try:
            claim = registry.claim(name)
            if not unbuilt and isinstance(claim.registered, LazyCard) and not claim.registered.built:
                continue
            entry = claim.entry
        except ZooError:
            continue
        if isinstance(entry, ModelCard):
            yield entry


def check_registered(spec: str, *, what: str, registry: Registry | None = None) -> None:
    """Raise `UntrustedCodeError` unless an installed plugin's card names `spec`; imports nothing."""
    if registry is None:
        registry = default_registry()
    # The built cards first: the model being loaded has had its card looked up, so a catalogue's
    # thousands of cards are built only to refuse code that no built card names.
    if isinstance(spec, str) and any(spec in registered_code(registry, unbuilt=unbuilt) for unbuilt in (False, True)):
        return
    module = spec.partition(":")[0] if isinstance(spec, str) else spec
    raise UntrustedCodeError(
        f"{what} names {spec!r}, which no installed plugin registered; zoo never imports code that a file "
        f"chooses (module {module!r} was not imported). Install the plugin that provides this model "
        "(see `zoo plugins`), or load the file with code you have read and trust."
    )
