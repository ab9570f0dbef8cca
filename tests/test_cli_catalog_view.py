"""How the catalogue reads on a terminal: `zoo list` fits its width and shows the default weights, `zoo info`
folds long values and says what a recipe needs, `zoo --version`, and `zoo create --help` promises what it prints."""
from __future__ import annotations

import json

import pytest
import trainer_models as tm

import zoo
from zoo.cli import main
from zoo.commands.create import SUMMARY


def _run(capsys, *args) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


@pytest.fixture
def narrow(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")


@pytest.fixture
def tagged():
    """A card whose default weights are not the alphabetically first, and one with long defaults."""
    weights = {tag: zoo.WeightsCard(source=f"https://example.org/{tag}.safetensors") for tag in ("a_v1", "b_v2", "c")}
    registry = zoo.default_registry()
    registry.register(zoo.ModelCard(name="view_net", builder="trainer_models:SmallConvNet", task="image-classification",
                                    modality="image", family="view", weights=weights, default_weights="b_v2"))
    registry.register(zoo.ModelCard(
        name="view_wide", builder="trainer_models:SmallConvNet", task="image-classification", modality="image",
        family="view", description="a card whose defaults and description are far wider than a terminal " * 3,
        defaults={f"option_{i}": f"value_{i}" for i in range(20)}))


def test_list_fits_an_80_column_terminal_and_keeps_every_name_whole(narrow, capsys):
    lines = _run(capsys, "list").splitlines()
    assert max(len(line) for line in lines) <= 80
    assert [line.split()[0] for line in lines[1:]] == zoo.list_models()
    assert lines[0].split() == ["NAME", "TASK", "WEIGHTS"]


def test_list_wide_shows_every_column_in_full(narrow, capsys):
    lines = _run(capsys, "list", "--wide").splitlines()
    assert lines[0].split() == ["NAME", "TASK", "MODALITY", "FAMILY", "PARAMS", "GFLOPS", "ACC@1", "WEIGHTS"]
    assert max(len(line) for line in lines) > 80


def test_list_shows_the_default_weights_not_the_alphabetically_first(tagged, narrow, capsys):
    assert _run(capsys, "list", "view_net").splitlines()[1].split()[-2:] == ["b_v2", "(+2)"]
    assert _run(capsys, "list", "view_net", "--wide").splitlines()[1].endswith("b_v2, a_v1, c")
    row = json.loads(_run(capsys, "list", "view_net", "--json"))[0]
    assert row["default_weights"] == "b_v2" and row["weights"] == ["a_v1", "b_v2", "c"]


def test_info_folds_long_values_to_the_terminal_width(tagged, narrow, capsys):
    lines = _run(capsys, "info", "view_wide").splitlines()
    assert max(len(line) for line in lines) <= 80
    start = next(i for i, line in enumerate(lines) if line.startswith("defaults:"))
    end = next((i for i in range(start + 1, len(lines)) if not lines[i].startswith(" " * 17)), len(lines))
    assert end - start > 1  # folded over several lines, each continuing under the first
    assert " ".join(line[17:] for line in lines[start:end]) == ", ".join(f"option_{i}=value_{i}" for i in range(20))


def test_info_of_a_recipe_says_which_options_it_requires(capsys):
    out = _run(capsys, "info", "resnet_ft")
    assert "required:        num_classes (zoo.create('resnet_ft', num_classes=...)" in out


def test_version_option_prints_zoos_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out == f"zoo {zoo.__version__}\n"


def test_create_help_promises_exactly_what_create_prints(capsys):
    with pytest.raises(SystemExit):
        main(["create", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "output shape" not in help_text
    assert all(description in help_text for description in SUMMARY.values())
    with tm.trainer_cards_on_one_thread():
        printed = _run(capsys, "create", "trainer_conv")
    assert [line.split(":")[0] for line in printed.splitlines()] == list(SUMMARY)
