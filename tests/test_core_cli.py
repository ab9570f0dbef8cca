import json
import subprocess
import sys

import pytest

from zoo.cli import main


def run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_table_and_json(acme, capsys):
    code, out, _ = run(["list", "acme*"], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "TASK", "MODALITY"]
    assert [row.split()[0] for row in lines[1:]] == ["acme_ft", "acme_net_m", "acme_net_s"]
    code, out, _ = run(["list", "--family", "acme", "--json"], capsys)
    rows = json.loads(out)
    assert {r["name"] for r in rows} == {"acme_ft", "acme_net_m", "acme_net_s"}
    assert next(r for r in rows if r["name"] == "acme_ft")["recipe_of"] == "acme_net_s"


def test_list_filters(acme, capsys):
    code, out, _ = run(["list", "acme*", "--modality", "text", "--json"], capsys)
    assert code == 0 and json.loads(out) == []


def test_info_readable_and_json(acme, capsys):
    code, out, _ = run(["info", "acme_net_s"], capsys)
    assert code == 0 and "head:" in out and "classifier" in out and "acme (acme-zoo)" in out
    code, out, _ = run(["info", "acme_ft", "--json"], capsys)
    data = json.loads(out)
    assert data["recipe"]["model"] == "acme_net_s" and data["distribution"] == "acme-zoo"
    assert data["layer_groups"] == ["stem", "stages.0", "stages.1", "classifier"]


def test_bad_input_exits_nonzero_with_one_line(acme, capsys):
    code, out, err = run(["info", "acme_nte"], capsys)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith("zoo: error: unknown model 'acme_nte'")
    assert "acme_net" in err


def test_console_script_and_python_dash_m_run(tmp_path):
    for cmd in (["zoo", "--help"], [sys.executable, "-m", "zoo", "list", "--json"]):
        exe = cmd if cmd[0] != "zoo" else [str(__import__("pathlib").Path(sys.executable).with_name("zoo")), "--help"]
        result = subprocess.run(exe, capture_output=True, text=True, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_unknown_option_is_an_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["list", "--colour", "red"])
    assert exc.value.code != 0


def test_example_plugin_through_the_command_line(acme, capsys):
    code, out, _ = run(["plugins", "--json"], capsys)
    acme_info = next(p for p in json.loads(out) if p["name"] == "acme")
    assert acme_info["status"] == "loaded" and acme_info["distribution"] == "acme-zoo"
    assert acme_info["models"] == ["acme_ft", "acme_net_m", "acme_net_s"]
    code, out, _ = run(["create", "acme_net_s", "--num-classes", "5", "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["num_classes"] == 5 and summary["class"].endswith("AcmeNet")
    assert summary["parameters"] == summary["trainable"] > 0
