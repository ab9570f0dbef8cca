"""The spoken-word demo dataset shipped with the plugin (made by scripts/make_speech_demo.py)."""
from __future__ import annotations

from pathlib import Path

DEMO_WORDS = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")


def demo_data_dir() -> Path:
    """``.../demo_data/speech_words``: ``train/<word>/*.flac`` (8 voices) and ``val/<word>/*.flac`` (2 others)."""
    return Path(__file__).resolve().parent / "demo_data" / "speech_words"
