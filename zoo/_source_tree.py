"""zoo's built-in plugins when zoo runs from a source checkout that is not installed (torch.hub).

torch.hub imports ``hubconf.py`` from a checkout, so zoo's distribution (`DISTRIBUTION`) and its
entry points may not exist, or exist only as a ``*.egg-info`` folder an earlier build left in the
checkout, which names the plugin packages without making them importable. The checkout's
``pyproject.toml`` says where the built-in plugin packages live and which entry points they
declare; this module puts those packages on ``sys.path`` and returns the entry points.
"""
from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._version import __version__

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTION = "zoo-models"
"""zoo's distribution name (``pip install zoo-models``, a plugin's dependency); the import name is ``zoo``."""


def is_zoo_distribution(name: str) -> bool:
    """Whether a distribution name is zoo's, however spelled (``zoo_models``, ``Zoo.Models``)."""
    return re.sub(r"[-_.]+", "-", name).lower() == DISTRIBUTION


@dataclass(frozen=True)
class SourceEntryPoint:
    """One entry point declared in the checkout's ``pyproject.toml``."""

    name: str
    value: str
    version: str


def source_tree_entry_points(group: str) -> list[SourceEntryPoint]:
    """The checkout's entry points of `group`, its plugin packages made importable; none outside a checkout."""
    project, package_dirs = _read_pyproject(ROOT / "pyproject.toml")
    if not is_zoo_distribution(str(project.get("name", ""))):
        return []
    _add_package_parents(package_dirs)
    version = str(project.get("version", __version__))  # the version is dynamic: zoo._version holds it
    entries = project.get("entry-points", {}).get(group, {})
    return [SourceEntryPoint(name, value, version) for name, value in entries.items()]


def _read_pyproject(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The ``[project]`` table and setuptools' ``package-dir`` of a pyproject.toml; empty when there is none."""
    if not path.is_file():
        return {}, {}
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    return data.get("project", {}), data.get("tool", {}).get("setuptools", {}).get("package-dir", {})


def _add_package_parents(package_dirs: dict[str, str]) -> None:
    """Append the folder above each declared package folder to ``sys.path`` (the root package excepted)."""
    for package, folder in package_dirs.items():
        parent = str((ROOT / folder).parent)
        if package and parent not in sys.path:
            sys.path.append(parent)
