"""docs/cards.md is generated from the card dataclasses: it fails here when it no longer matches them."""
import dataclasses

from conftest import REPO

import zoo
from zoo.cards import REFERENCE_COMMAND, field_reference

CLASSES = (zoo.ModelCard, zoo.WeightsCard, zoo.Recipe, zoo.ImageInput, zoo.TextInput, zoo.AudioInput)


def test_the_field_reference_page_matches_the_dataclasses():
    page = (REPO / "docs" / "cards.md").read_text(encoding="utf-8")
    assert page == field_reference(), f"docs/cards.md is stale; regenerate it with: {REFERENCE_COMMAND}"


def test_every_field_is_on_the_page_with_its_meaning():
    rows = {}
    section = None
    for line in field_reference().splitlines():
        if line.startswith("## "):
            section = line.strip("# `").removeprefix("zoo.")
        elif line.startswith("| `"):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[section, cells[0].strip("`")] = cells
    for cls in CLASSES:
        for item in dataclasses.fields(cls):
            name, kind, default, meaning = rows[cls.__name__, item.name]
            assert meaning, f"{cls.__name__}.{item.name} has no docstring in zoo/cards.py"
    assert rows["ModelCard", "name"][2] == "required" and rows["WeightsCard", "metrics"][2] == "`{}`"
    assert rows["ImageInput", "kind"][2] == "always `'image'`"
    assert "package:PKG/path" in rows["WeightsCard", "source"][3]
