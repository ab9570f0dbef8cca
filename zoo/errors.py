"""Every error zoo raises on purpose is a `ZooError`; each message says what to do next."""
from __future__ import annotations


class ZooError(Exception):
    """Base class of zoo's errors."""


class CardError(ZooError, ValueError):
    """A model card (or weights card) has a missing or malformed field."""

    def __init__(self, message: str, *, field: str | None = None, plugin: str | None = None):
        self.field = field
        self.plugin = plugin  # filled in by the plugin loader when a plugin's card is bad
        super().__init__(message)

    def __str__(self) -> str:
        where = f" (in plugin {self.plugin!r})" if self.plugin else ""
        return f"{self.args[0]}{where}"


class UnknownModelError(ZooError, KeyError):
    """A name matches no registered model, recipe or alias."""

    def __init__(self, message: str, *, name: str, suggestions: list[str] | None = None):
        self.name = name
        self.suggestions = list(suggestions or [])
        super().__init__(message)

    def __str__(self) -> str:  # KeyError would quote the message
        message: str = self.args[0]
        return message


class UnknownWeightsError(ZooError, KeyError):
    """A `name.tag` names weights the model does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        message: str = self.args[0]
        return message


class DuplicateModelError(ZooError):
    """Two plugins claim the same model name."""


class PluginError(ZooError):
    """A plugin failed to import or register, or a strict-mode check failed."""


class InvalidArgumentError(ZooError, TypeError):
    """`zoo.create` got a keyword the model does not accept, or lacks a required one."""


class WeightsError(ZooError):
    """Weights could not be found, downloaded, verified or loaded."""


class DataError(ZooError, ValueError):
    """A dataset could not be read: an empty folder, an unreadable file, a missing column."""


class UntrustedCodeError(ZooError):
    """A file (a saved model's config, a checkpoint) names code that no installed plugin registered.

    zoo imports only builders, key maps and converters that installed plugins declare in their
    cards; data never chooses a module to import.
    """
