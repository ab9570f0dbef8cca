"""Builders that take **kwargs (all of torchvision's) still get zoo's unknown-keyword message; a missing
third-party module names what to install."""
import pytest

import zoo

PLUGIN = """
import zoo

def register(registry):
    for name, builder in (("kw_net", "kw_plugin.models:build"), ("deps_net", "kw_plugin.models:build_with_deps"),
                          ("buggy_net", "kw_plugin.models:build_buggy"), ("own_net", "kw_plugin.models:build_own")):
        registry.register(zoo.ModelCard(name=name, builder=builder, task="image-classification", modality="image"))
"""
MODELS = """
import torch


class KwNet(torch.nn.Module):
    def __init__(self, layers, width=8, num_classes=10):
        super().__init__()
        self.fc = torch.nn.Linear(width, num_classes)


def build(**kwargs) -> KwNet:
    return KwNet([1, 1], **kwargs)


def build_with_deps(**kwargs):
    import zoo_test_module_that_is_not_installed  # noqa: F401
    return KwNet([1], **kwargs)


def build_buggy(**kwargs) -> KwNet:
    torch.nn.Linear(3, 4, not_a_linear_option=True)  # a bug inside the model code, not the user's keyword


def build_own(**kwargs):
    import kw_plugin.missing_part  # noqa: F401
"""


@pytest.fixture
def kw_plugin(site):
    site("kw-zoo", {"kw": "kw_plugin:register"}, {"kw_plugin/__init__.py": PLUGIN, "kw_plugin/models.py": MODELS})


def test_torchvision_builder_with_an_unknown_keyword_lists_what_the_model_takes():
    with pytest.raises(zoo.InvalidArgumentError) as info:
        zoo.create("resnet18", num_clases=3)
    message = str(info.value)
    assert message.startswith("model 'resnet18' does not take 'num_clases'; it takes pretrained, num_classes")
    assert "zero_init_residual" in message and "width_per_group" in message  # ResNet's own keywords
    assert "block" not in message.split("takes", 1)[1]  # what the builder fills in itself is not offered


def test_kwargs_builder_of_a_plugin_lists_its_model_class_keywords(kw_plugin):
    assert zoo.create("kw_net", width=4).fc.in_features == 4
    takes = ("pretrained, num_classes, freeze, freeze_bn, features_only, out_indices, checkpoint_path, device, "
             "dtype, width")
    with pytest.raises(zoo.InvalidArgumentError, match=rf"does not take 'depth'; it takes {takes}$"):
        zoo.create("kw_net", depth=3)


def test_an_unexpected_keyword_inside_model_code_is_not_blamed_on_the_caller(kw_plugin):
    with pytest.raises(TypeError, match="not_a_linear_option") as info:
        zoo.create("buggy_net")
    assert not isinstance(info.value, zoo.ZooError)


def test_a_missing_third_party_module_names_what_to_install(kw_plugin):
    with pytest.raises(zoo.PluginError, match=r"model 'deps_net' needs the Python package "
                                              r"'zoo_test_module_that_is_not_installed', which is not installed; "
                                              r"install it \(pip install zoo_test_module_that_is_not_installed\)"):
        zoo.create("deps_net")
    with pytest.raises(ModuleNotFoundError, match="kw_plugin.missing_part"):  # the plugin's own bug stays its own
        zoo.create("own_net")
