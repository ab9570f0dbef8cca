"""Export parity for one small model per family (vision, text, speech, timm, the example plugin), both formats.

Slow: each export traces a whole model (several seconds each on a busy CPU). Random weights; nothing downloaded.
"""
from __future__ import annotations

import pytest

import zoo
from zoo.exports import export

pytestmark = pytest.mark.slow

TINY_BERT = {"num_layers": 2, "hidden_size": 32, "num_heads": 4, "intermediate_size": 37, "num_classes": 3}
TINY_WAV2VEC2 = {"encoder_embed_dim": 32, "encoder_num_heads": 2, "encoder_ff_interm_features": 64,
                 "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 2,
                 "extractor_conv_layer_config": [(16, 10, 5), (16, 3, 2), (16, 2, 2)]}
CASES = {"shufflenet_v2_x0_5": {}, "bert_classifier": TINY_BERT, "kws_cnn_s": {}, "wav2vec2_base": TINY_WAV2VEC2,
         "timm/test_resnet": {}}


@pytest.mark.parametrize("fmt", ["onnx", "exported-program"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_one_model_per_family_exports_with_parity(tmp_path, name, fmt):
    model = zoo.create(name, pretrained=False, **CASES[name])
    result = export(model, tmp_path / "out", format=fmt)
    assert result.ok, str(result)
    assert [check.shapes.split(",")[0].split("[")[1].split(",")[0] for check in result.parity] == ["2", "3"]


@pytest.mark.parametrize("fmt", ["onnx", "exported-program"])
def test_the_example_plugin_exports_with_parity(acme, tmp_path, fmt):
    result = export(zoo.create("acme_net_s", pretrained=False), tmp_path / "out", format=fmt)
    assert result.ok, str(result)
