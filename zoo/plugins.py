"""Plugins as users see them: `list_plugins` and the status it reports.

Discovery and loading live in `zoo.plugin_loader`, the contract a plugin is written against
in `zoo.plugin_api`, and the status of each plugin on the registry it loaded into.
"""
from __future__ import annotations

from .plugin_loader import PluginInfo, load_plugins
from .registry import default_registry

__all__ = ["PluginInfo", "list_plugins", "load_plugins"]


def list_plugins() -> list[PluginInfo]:
    """Status of every discovered plugin: ``loaded``, ``failed`` (with its error) or ``disabled``."""
    return default_registry().plugins()
