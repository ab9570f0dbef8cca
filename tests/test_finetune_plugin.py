"""The fine-tune API through a model from the example third-party plugin, installed as a user would."""
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN_SOURCE = Path(__file__).resolve().parents[1] / "plugins" / "example_plugin"

SCRIPT = textwrap.dedent('''
    import torch
    import zoo
    from zoo.finetune import freeze, get_strategy, layer_groups, param_groups, reset_head, unfreeze
    from zoo.finetune.feature_cache import cached_features
    from zoo.finetune.freezing import kept_in_eval

    assert zoo.list_plugins()[0].distribution == "acme-zoo"

    # The recipe: a new head of 3 classes, the first layer group (stem) frozen.
    model = zoo.create("acme_ft", num_classes=3)
    assert model.classifier.out_features == 3 and model.zoo_card.num_classes == 3
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {"stem.0.weight", "stem.1.weight", "stem.1.bias"}, frozen
    assert kept_in_eval(model) == ["stem.1"]
    assert [p for p, _ in layer_groups(model)] == ["stem", "stages.0", "stages.1", "classifier"]

    # A frozen backbone gives bit-identical features after a training epoch.
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 64, 64, generator=g), torch.randint(0, 3, (16,), generator=g)
    model.train(); model(x)  # move the statistics away from their initial values
    freeze(model, "backbone")
    body = lambda m, x: m.pool(m.stages(m.stem(x)))
    model.eval(); before = body(model, x)
    opt = torch.optim.SGD(param_groups(model, 0.1, layer_decay=0.5), lr=0.1, momentum=0.9)
    model.train()
    for _ in range(3):
        opt.zero_grad(); torch.nn.functional.cross_entropy(model(x), y).backward(); opt.step()
    model.eval(); assert torch.equal(body(model, x), before)

    # An unfreeze needs no new optimizer: the stem trains on the next step.
    stem = model.stem[0].weight.detach().clone()
    unfreeze(model); model.train()
    opt.zero_grad(); torch.nn.functional.cross_entropy(model(x), y).backward(); opt.step()
    assert not torch.equal(model.stem[0].weight, stem)

    # Features are cached through the card's head path alone.
    import sys
    freeze(model, "backbone")
    first = cached_features(model, [(x, y)], data="acme-test", cache_dir=sys.argv[1])
    second = cached_features(model, [], data="acme-test", cache_dir=sys.argv[1])
    assert not first.hit and second.hit and second.features.shape == (16, 32)

    # Strategies and pooled features.
    fresh = zoo.create("acme_net_m", num_classes=4)
    strategy = get_strategy("freeze_unfreeze")
    strategy.setup(fresh)
    assert {n for n, p in fresh.named_parameters() if p.requires_grad} == {"classifier.weight", "classifier.bias"}
    strategy.on_epoch_start(fresh, 1, 3)
    assert all(p.requires_grad for p in fresh.parameters())
    reset_head(fresh, 0)
    assert fresh(torch.randn(2, 3, 64, 64)).shape == (2, 64)

    # zoo.create passes the BatchNorm policy through.
    affine = zoo.create("acme_net_s", freeze="backbone", freeze_bn="affine")
    assert affine.stem[1].weight.requires_grad and not affine.stem[0].weight.requires_grad
    assert kept_in_eval(affine) == ["stem.1", "stages.0.1", "stages.1.1"]
    print("FINETUNE-PLUGIN-OK")
''')


@pytest.fixture(scope="module")
def acme_site(tmp_path_factory):
    root = tmp_path_factory.mktemp("acme")
    source = root / "src"
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), str(source)], check=True, capture_output=True, timeout=300)
    return site


def test_finetune_api_works_on_a_third_party_plugin_model(acme_site, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(acme_site), "ZOO_PLUGINS_AUTOLOAD": "0", "ZOO_PLUGINS_ALLOW": "acme",
           "ZOO_PLUGINS_STRICT": "1", "ZOO_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "features")], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "FINETUNE-PLUGIN-OK" in done.stdout
