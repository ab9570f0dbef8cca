"""zoo's distribution name: free on the package index (`zoo` there is an unrelated RPC framework), import name `zoo`."""
import re
import tomllib
from importlib import metadata

from conftest import EXAMPLE_PLUGIN, REPO

import zoo
from zoo.plugin_loader import DISTRIBUTION


def _project(path):
    with (path / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]


def test_the_distribution_is_not_the_unrelated_zoo_on_the_package_index():
    name = _project(REPO)["name"]
    assert name == DISTRIBUTION == "zoo-models"
    assert set(metadata.packages_distributions()["zoo"]) == {name}  # the import name stays `zoo`


def test_the_example_plugin_depends_on_zoos_distribution_not_on_zoo():
    dependencies = [re.split(r"[\s<>=!~;\[]", dep)[0] for dep in _project(EXAMPLE_PLUGIN)["dependencies"]]
    assert DISTRIBUTION in dependencies
    assert "zoo" not in dependencies


def test_builtin_plugins_report_zoos_distribution():
    infos = {info.name: info for info in zoo.list_plugins()}
    assert {infos[name].distribution for name in ("vision", "text", "speech")} == {DISTRIBUTION}
