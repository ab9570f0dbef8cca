"""Catalogue queries: list_models with lists of wildcards and exclude=, cards' GFLOPs and headline metric, and
`zoo list --sort/--max-params/--min-acc1/--license`, all without importing torch."""
from __future__ import annotations

import json

import pytest
from conftest import run_python

import zoo
from zoo.cli import main
from zoo.commands.catalog import license_matches
from zoo_vision.catalog import model_cards

BSD, NC = "BSD-3-Clause", "CC-BY-NC-4.0"


def _weights(params, gflops, acc1, license=BSD, **metrics):
    return zoo.WeightsCard(source="https://example.org/w.safetensors", num_params=params, gflops=gflops,
                           license=license, metrics={**({"acc@1": acc1} if acc1 is not None else {}), **metrics})


@pytest.fixture
def q():
    """Four models under the family 'q': small/accurate, big/more accurate (NC), tiny without figures, no weights."""
    registry = zoo.default_registry()
    cards = {
        "q_small": {"w": _weights(5_000_000, 0.5, 75.0, top5=92.0)},
        "q_big": {"w": _weights(80_000_000, 12.0, 85.5, license=NC, top5=97.0)},
        "q_bare": {"w": zoo.WeightsCard(source="https://example.org/w.safetensors", license="Apache-2.0")},
        "q_none": {},
    }
    for name, weights in cards.items():
        registry.register(zoo.ModelCard(name=name, builder="trainer_models:SmallConvNet", task="image-classification",
                                        modality="image", family="q", weights=weights,
                                        default_weights="w" if weights else None))


def _names(capsys, *args) -> list[str]:
    assert main(["list", "--family", "q", "--json", *args]) == 0
    return [row["name"] for row in json.loads(capsys.readouterr().out)]


# ---------------------------------------------------------------------------- list_models


def test_list_models_takes_lists_of_patterns_and_exclude(q):
    assert zoo.list_models(["q_s*", "q_b*"]) == ["q_bare", "q_big", "q_small"]
    assert zoo.list_models("q_*", exclude="q_b*") == ["q_none", "q_small"]
    assert zoo.list_models(("q_*",), exclude=["q_b*", "*none"]) == ["q_small"]
    assert zoo.list_models("q_*", exclude="q_*.w", pretrained=True) == ["q_bare", "q_big", "q_small"]
    assert zoo.list_models([]) == []


@pytest.mark.parametrize("kwargs", [{"pattern": 3}, {"exclude": ["a", 1]}, {"pattern": {"q_*"}}, {"exclude": b"q"}])
def test_list_models_refuses_patterns_that_are_not_strings(kwargs):
    with pytest.raises(zoo.InvalidArgumentError, match="wildcard"):
        zoo.list_models(**kwargs)


def test_vision_list_models_with_patterns_keeps_natural_order():
    assert zoo.list_models(["resnet*", "wide_resnet*"], exclude="*_ft") == [
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2"]


# ---------------------------------------------------------------------------- cards


def test_weights_gflops_and_headline_metric():
    card = zoo.ModelCard(name="h", builder="m:f", task="image-classification", modality="image",
                         weights={"a": _weights(1, 2, 70.0), "b": _weights(1, 3, None, top5=9.0),
                                  "c": _weights(1, None, None)}, default_weights="a")
    assert card.weights["a"].gflops == 2.0 and isinstance(card.weights["a"].gflops, float)
    assert card.headline_metric() == ("acc@1", 70.0)
    assert card.headline_metric("b") == ("top5", 9.0)
    assert card.headline_metric("c") is None
    assert zoo.ModelCard(name="n", builder="m:f", task="t", modality="image").headline_metric() is None
    for bad in ("4", -1.0, True):
        with pytest.raises(zoo.CardError, match="gflops"):
            zoo.WeightsCard(source="x", gflops=bad)
    assert zoo.WeightsCard.from_dict(_weights(1, 2.5, 1.0).to_dict()).gflops == 2.5


def test_torchvision_cards_carry_gflops_params_and_top1():
    card = zoo.get_card("resnet50")
    weights = card.weights["imagenet1k_v2"]
    assert (weights.num_params, weights.gflops) == (25557032, 4.089)
    assert "gflops" not in weights.metrics
    assert card.headline_metric() == ("acc@1", 80.858)
    assert all(w.gflops and w.num_params for c in model_cards() for w in c.weights.values())


# ---------------------------------------------------------------------------- zoo list


def test_sort_by_metric_puts_the_best_first_and_models_without_it_last(q, capsys):
    assert _names(capsys, "--sort", "acc1") == ["q_big", "q_small", "q_bare", "q_none"]
    assert _names(capsys, "--sort", "top5") == ["q_big", "q_small", "q_bare", "q_none"]
    assert _names(capsys, "--sort", "params") == ["q_small", "q_big", "q_bare", "q_none"]
    assert _names(capsys, "--sort", "gflops") == ["q_small", "q_big", "q_bare", "q_none"]
    assert _names(capsys) == ["q_bare", "q_big", "q_none", "q_small"]


def test_sort_by_a_metric_nobody_has_is_an_error(q, capsys):
    assert main(["list", "--family", "q", "--sort", "bleu"]) == 2
    assert "acc@1" in capsys.readouterr().err


@pytest.mark.parametrize(("limit", "kept"), [("30M", ["q_small"]), ("1.5G", ["q_big", "q_small"]),
                                             ("5000000", ["q_small"]), ("4999999", [])])
def test_max_params_takes_suffixes_and_leaves_out_models_without_a_count(q, capsys, limit, kept):
    assert _names(capsys, "--max-params", limit) == kept


def test_max_params_refuses_what_is_not_a_count(q, capsys):
    with pytest.raises(SystemExit):
        main(["list", "--max-params", "lots"])
    assert "30M" in capsys.readouterr().err


def test_min_acc1_and_license_filters(q, capsys):
    assert _names(capsys, "--min-acc1", "80") == ["q_big"]
    assert _names(capsys, "--license", "permissive") == ["q_bare", "q_small"]
    assert _names(capsys, "--license", "non-commercial") == ["q_big"]
    assert _names(capsys, "--license", "apache-2.0") == ["q_bare"]


def test_json_rows_carry_the_figures(q, capsys):
    assert main(["list", "q_small", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert (row["num_params"], row["gflops"], row["license"]) == (5_000_000, 0.5, BSD)
    assert row["metrics"] == {"acc@1": 75.0, "top5": 92.0}


def test_table_shows_the_figures_and_keeps_the_sort_column_on_a_narrow_terminal(q, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["list", "--family", "q", "--sort", "top5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "TASK", "MODALITY", "FAMILY", "PARAMS", "GFLOPS", "ACC@1", "TOP5", "WEIGHTS"]
    assert lines[1].split()[:8] == ["q_big", "image-classification", "image", "q", "80.0M", "12.00", "85.50", "97.00"]
    monkeypatch.setenv("COLUMNS", "60")
    assert main(["list", "--sort", "acc1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "TASK", "ACC@1", "WEIGHTS"]  # the --sort column outlasts the others


def test_zoo_list_with_sort_and_filters_does_not_import_torch():
    result = run_python("""
        import sys, contextlib, io, json
        from zoo.cli import main
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["list", "--sort", "acc1", "--max-params", "30M", "--license", "permissive", "--json"])
        rows = json.loads(out.getvalue())
        print(json.dumps({"code": code, "first": rows[0]["name"], "torch": 'torch' in sys.modules}))
    """)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out == {"code": 0, "first": "efficientnet_ft", "torch": False}


@pytest.mark.parametrize(("license", "permissive"), [
    ("apache-2.0", True), ("mit", True), ("MIT", True), ("bsd-3-clause", True), ("BSD-2-Clause", True),
    ("cc-by-nc-4.0", False), ("unknown", False), ("llama2", False),
])
def test_permissive_licences_match_in_any_case_as_the_hub_writes_them(license, permissive):
    assert license_matches(license, "permissive") is permissive
