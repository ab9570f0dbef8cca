"""Name matching shared by freezing, parameter groups and LoRA.

A *pattern* is a shell wildcard (``fnmatch``) over dotted names. A pattern names a
module and everything under it: ``"stages.0"`` matches ``stages.0.conv.weight``, and
``"*.attn.*"`` matches any tensor below a module called ``attn``.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterable


def matches(name: str, pattern: str) -> bool:
    """Whether `name` is `pattern` or lies under a module `pattern` names."""
    return fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(name, pattern + ".*")


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    return any(matches(name, p) for p in patterns)


def under(name: str, prefix: str) -> bool:
    """Whether dotted `name` is `prefix` itself or inside it (plain prefix, no wildcards)."""
    return prefix == "" or name == prefix or name.startswith(prefix + ".")


def as_patterns(spec: str | Iterable[str]) -> list[str]:
    return [spec] if isinstance(spec, str) else list(spec)


def examples(names: Iterable[str], limit: int = 6) -> str:
    names = list(names)
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")
