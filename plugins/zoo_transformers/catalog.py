"""The curated catalogue (catalog.json) as cards; plain data, read without torch or transformers."""
from __future__ import annotations

import zoo


def catalogue_cards() -> list[zoo.ModelCard]:
    return []
