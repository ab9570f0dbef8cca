"""Listing and reading cards never import torch or any plugin's model code."""
import json

from conftest import run_python


def test_import_list_and_get_card_do_not_import_torch(example_plugin_site):
    result = run_python("""
        import json, sys
        import zoo
        names = zoo.list_models()
        cards = [zoo.get_card(n) for n in names]
        heavy = sorted(m for m in sys.modules
                       if m.split('.')[0] in {'torch', 'torchvision', 'torchaudio', 'transformers', 'safetensors'}
                       or m.endswith('.models') and m.split('.')[0] not in {'zoo'})
        print(json.dumps({"names": names, "heavy": heavy}))
    """, env={"PYTHONPATH": str(example_plugin_site)})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert "acme_net_s" in out["names"]  # a third-party plugin was listed ...
    assert out["heavy"] == []            # ... and neither torch nor its model module was imported


def test_zoo_list_command_does_not_import_torch():
    result = run_python("""
        import sys, contextlib, io
        from zoo.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            main(["list"]); main(["plugins"])
        print('torch' in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
