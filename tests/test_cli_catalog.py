"""`zoo list`, `zoo info` and `zoo plugins` through zoo's current API only."""
from __future__ import annotations

import warnings

import pytest

from zoo.cli import main


@pytest.mark.parametrize("args", [["info", "acme_net_s"], ["info", "acme_ft", "--json"], ["list"], ["plugins"]])
def test_catalogue_commands_use_no_deprecated_zoo_api(acme, capsys, args):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        assert main(args) == 0
    assert "acme" in capsys.readouterr().out
