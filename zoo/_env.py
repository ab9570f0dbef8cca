"""Reading zoo's environment switches (``ZOO_PLUGINS_STRICT=1``, ``ZOO_OFFLINE=yes`` ...): one rule for all."""
from __future__ import annotations

import os

TRUE_VALUES = frozenset({"1", "true", "yes", "on"})


def env_flag(name: str, default: bool = False) -> bool:
    """Whether environment variable `name` is set to a true value; unset or empty gives `default`."""
    raw = os.environ.get(name)
    return default if raw is None or raw.strip() == "" else raw.strip().lower() in TRUE_VALUES
