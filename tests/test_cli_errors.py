"""What the ``zoo`` command prints when something goes wrong: the whole of zoo's message, on stderr."""
from __future__ import annotations

from zoo.cli import main

BROKEN_PLUGIN = {
    "broken_zoo/__init__.py": "",
    "broken_zoo/plugin.py": """
        raise ImportError("broken-zoo needs libfrob 2\\nfix: pip install 'libfrob>=2', then run zoo plugins")
    """,
}


def test_a_multi_line_error_is_printed_whole(site, capsys):
    site("broken-zoo", {"broken": "broken_zoo.plugin:register"}, BROKEN_PLUGIN)
    assert main(["info", "nothing_like_this"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("zoo: error: unknown model 'nothing_like_this'")
    assert "fix: pip install 'libfrob>=2', then run zoo plugins" in captured.err  # the cause's second line
    assert captured.err.rstrip().endswith("`zoo list` shows every model.")  # and what follows it

