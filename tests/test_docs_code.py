"""The Python blocks of README.md and docs/ are valid Python, and those that need no network or data run as written."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
BLOCK = re.compile(r"^( *)```python\n(.*?)^\1```", re.S | re.M)

# Blocks that run offline with nothing but zoo installed, named by their page and first line.
RUNNABLE = [
    ("README.md", "import zoo", "def register(registry: zoo.Registrar)"),
    ("docs/finetune.md", "import torch, zoo", ""),
    ("docs/plugins.md", "import zoo", "def register(registry: zoo.Registrar)"),
    ("docs/plugins.md", "# tests/test_acme_zoo.py in the plugin's repository", ""),
    ("docs/plugins.md", 'extra={"builder_weights"', ""),
    ("docs/vision.md", "import zoo", 'card = zoo.get_card("resnet50")'),
    ("docs/vision.md", "from PIL import Image", ""),
    ("docs/weights.md", "extra={", ""),
]


def _blocks() -> list[tuple[str, str]]:
    return [(str(page.relative_to(REPO)), textwrap.dedent(match.group(2)))
            for page in PAGES for match in BLOCK.finditer(page.read_text())]


def _find(page: str, first: str, contains: str) -> str:
    found = [code for name, code in _blocks() if name == page and code.lstrip().startswith(first) and contains in code]
    assert len(found) == 1, f"{page}: no single Python block starting {first!r} (and holding {contains!r})"
    return found[0]


@pytest.mark.parametrize("page, code", _blocks(), ids=lambda value: value if value.endswith(".md") else "")
def test_every_python_block_in_the_docs_is_valid_python(page, code):
    compile(code, page, "exec")


@pytest.mark.parametrize("page, first, contains", RUNNABLE, ids=[f"{p}:{f[:20]}" for p, f, _ in RUNNABLE])
def test_the_offline_blocks_of_the_docs_run_as_written(page, first, contains, tmp_path):
    code = _find(page, first, contains)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hf"),
           "TORCH_HOME": str(tmp_path / "torch"), "ZOO_CACHE": str(tmp_path / "zoo")}
    done = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"{page} block {first!r} failed:\n{done.stderr[-3000:]}"
