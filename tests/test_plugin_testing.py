"""zoo.testing.check_plugin: one call for a plugin author's test suite, checking every card and recipe."""
import pytest

import zoo

BROKEN = """
import zoo

def card(name, **fields):
    fields = {"builder": "broken_plugin.models:build", "task": "image-classification", "modality": "image",
              "input": zoo.ImageInput(size=8), "head": "classifier", "layer_groups": ["stem", "classifier"],
              "num_features": 6, **fields}
    return zoo.ModelCard(name=name, **fields)

def register(registry):
    registry.register(card("fine_net"))
    registry.register(card("typo_net", head="clasifier"))
    registry.register(card("wide_net", num_features=99))
    registry.register(card("text_net", input=zoo.TextInput(max_length=8)))
    registry.register(card("grey_net", builder="broken_plugin.models:build_grey"))
    registry.register(zoo.Recipe(name="fine_ft", model="fine_net", options={"freeze": "stem"},
                                 required=("num_classes",)))
    registry.register(zoo.Recipe(name="bad_freeze_ft", model="fine_net", options={"freeze": "stme"},
                                 required=("num_classes",)))
"""
MODELS = """
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, channels=3, num_classes=4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(channels, 6, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(6, num_classes)

    def forward(self, x):
        return self.classifier(self.stem(x))


def build(num_classes=4):
    return Net(num_classes=num_classes)


def build_grey(num_classes=4):
    return Net(channels=1, num_classes=num_classes)  # takes one channel, while an ImageInput gives RGB
"""


def test_the_example_plugin_passes_its_check(acme):
    report = zoo.testing.check_plugin("acme")
    assert report.ok and report.checked == ("acme_ft", "acme_net_m", "acme_net_s")
    assert (report.plugin, report.distribution) == ("acme", "acme-zoo")
    assert zoo.testing.check_plugin("acme-zoo").ok  # the distribution name works too


def test_every_problem_of_a_plugin_is_listed_in_one_error(site):
    site("broken-zoo", {"broken": "broken_plugin:register"},
         {"broken_plugin/__init__.py": BROKEN, "broken_plugin/models.py": MODELS})
    with pytest.raises(zoo.testing.PluginCheckError) as info:
        zoo.testing.check_plugin("broken")
    problems = info.value.report.problems
    names = [line.split(":")[0] for line in problems]
    assert names == ["bad_freeze_ft", "grey_net", "grey_net", "text_net", "typo_net", "wide_net"]  # fine_* pass
    found = dict(line.split(": ", 1) for line in problems)  # grey_net: its features forward fails too
    assert "freeze pattern 'stme' matches no parameter" in found["bad_freeze_ft"]
    assert "forward on input of shape (2, 3, 8, 8) failed" in found["grey_net"]
    assert "field 'input' is 'text' for a model of modality 'image'" in found["text_net"]
    assert "field 'head' names 'clasifier'" in found["typo_net"]
    assert "with num_classes=0 (features): outputs end in 6, expected 99" in found["wide_net"]
    assert "broken-zoo: 7 entries checked, 6 problem(s)" in str(info.value)
    report = zoo.testing.check_plugin("broken", raise_on_problems=False)
    assert report.problems == problems and not report.ok


def test_checking_a_plugin_that_is_not_installed_names_those_that_are(acme):
    with pytest.raises(zoo.PluginError, match="no plugin 'acne' is installed; plugins found: .*acme \\(acme-zoo\\)"):
        zoo.testing.check_plugin("acne")


@pytest.mark.slow
@pytest.mark.parametrize("plugin", ["vision", "text", "speech"])
def test_every_builtin_card_passes_the_plugin_check(plugin):
    """Shapes on the meta device (no memory, no arithmetic); what cannot run there runs on the CPU."""
    report = zoo.testing.check_plugin(plugin, device="meta")
    assert report.ok and len(report.checked) > 30
