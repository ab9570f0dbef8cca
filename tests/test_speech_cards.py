"""Speech cards: every card builds with its declared head and layer groups; torchaudio's bundles agree.

All cards are built with parameters on the meta device (structure only, in seconds); a
representative few are built for real and run.
"""
from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from conftest import run_python  # noqa: E402
from test_speech_support import create_tiny  # noqa: E402

import zoo  # noqa: E402
from zoo.factory import attach_card, import_builder  # noqa: E402
from zoo.finetune import freeze, unfreeze  # noqa: E402
from zoo.finetune.groups import layer_groups  # noqa: E402
from zoo.weights.loading import parameters_on_meta  # noqa: E402
from zoo_speech.architectures import ASR_PARAM_OVERRIDES, EN_CTC_LABELS, ENCODERS  # noqa: E402

SPEECH_FAMILIES = {"wav2vec2", "hubert", "wavlm", "kws"}


def speech_names() -> list[str]:
    """The speech family's models and recipes (other families, such as transformers', have audio models too)."""
    return sorted(next(p for p in zoo.list_plugins() if p.name == "speech").models)


def speech_cards():
    return [zoo.get_card(n) for n in speech_names() if not zoo.get_card(n).recipe]


def test_catalogue_lists_every_encoder_for_every_task_without_torch():
    result = run_python("""
        import sys, zoo
        speech = next(p for p in zoo.list_plugins() if p.name == "speech").models
        names = [n for n in zoo.list_models(modality="audio") if n in speech]
        assert "torch" not in sys.modules and "torchaudio" not in sys.modules, "listing imported torch"
        print(len(names), len(zoo.list_models("*_ctc", pretrained=True)))
    """)
    assert result.returncode == 0, result.stderr
    count, with_ctc_weights = map(int, result.stdout.split())
    assert count == 3 * len(ENCODERS) + 2 + 2  # three tasks per encoder, two KWS sizes, two recipes
    assert with_ctc_weights >= 5
    for enc in ENCODERS:
        assert zoo.get_card(enc.name).task == "feature-extraction"
        assert zoo.get_card(enc.name + "_cls").task == "audio-classification"
        assert zoo.get_card(enc.name + "_ctc").task == "automatic-speech-recognition"
    assert {zoo.get_card(n).family for n in speech_names()} == SPEECH_FAMILIES


def test_card_data_agrees_with_torchaudio_bundles():
    pipelines = pytest.importorskip("torchaudio.pipelines")

    def plain(params):
        return {k: ([list(c) for c in v] if k == "extractor_conv_layer_config" else v)
                for k, v in params.items() if k != "aux_num_out"}

    for enc in ENCODERS:
        bundle = getattr(pipelines, enc.bundle)
        card = zoo.get_card(enc.name)
        assert plain(bundle._params) == {k: card.defaults[k] for k in plain(bundle._params)}
        assert card.weights["torchaudio"].source.endswith("/" + bundle._path)
        assert card.input.sample_rate == bundle.sample_rate
        assert card.defaults["normalize_waveform"] == bundle._normalize_waveform
        ctc = zoo.get_card(enc.name + "_ctc")
        for asr in enc.asr:
            asr_bundle = next(getattr(pipelines, n) for n in dir(pipelines)
                              if getattr(getattr(pipelines, n), "_path", None) == asr.path)
            assert asr_bundle.get_labels() == EN_CTC_LABELS == ctc.weights[asr.tag].labels
            expected = {**plain(asr_bundle._params)}
            assert expected == {k: ctc.defaults[k] for k in expected}, enc.name
        assert set(ASR_PARAM_OVERRIDES) <= {e.name for e in ENCODERS}


@pytest.mark.parametrize("card", speech_cards(), ids=lambda c: c.name)
def test_every_card_builds_with_its_head_and_layer_groups(card):
    with parameters_on_meta():
        model = import_builder(card)(**card.defaults)
    attach_card(model, card)
    names = [n for n, _ in model.named_parameters()]
    for group in card.layer_groups:
        model.get_submodule(group)
    owners = {n: [g for g in card.layer_groups if n == g or n.startswith(g + ".")] for n in names}
    assert all(len(o) == 1 for o in owners.values()), {n: o for n, o in owners.items() if len(o) != 1}
    assert sum(len(p) for _, p in layer_groups(model)) == len(names)
    if card.task == "feature-extraction":
        assert card.head is None
    else:
        head = model.get_submodule(card.head)
        assert card.layer_groups[-1] == card.head
        assert head.out_features == card.class_count() and head.in_features == card.num_features
    if card.family != "kws":
        assert card.layer_groups[0] == "feature_extractor"
        assert len(card.layer_groups) == card.defaults["encoder_num_layers"] + 4 + (card.head is not None)


def test_representative_models_run_on_padded_batches():
    x = torch.randn(2, 8000) * 0.1
    lengths = torch.tensor([8000, 5000])
    for name, shape in [("wav2vec2_base_cls", (2, 4)), ("wavlm_base_ctc", (2, 24, 29)), ("hubert_large", (2, 24, 32)),
                        ("kws_cnn_s", (2, 4))]:
        model = (zoo.create(name, num_classes=4) if name.startswith("kws")
                 else create_tiny(name, **({"num_classes": 4} if name.endswith("cls") else {}))).eval()
        with torch.no_grad():
            out = model(x, lengths)
            alone = model(x[1:, :5000])
        assert tuple(out.shape) == shape and torch.isfinite(out).all(), name
        assert zoo.card_of(model).input.sample_rate == 16000
        if name == "hubert_large":  # layer-norm extractor and per-clip normalization: padding changes nothing
            assert (out[1, : alone.shape[1]] - alone[0]).abs().max() < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["wav2vec2_base_cls", "hubert_base_ctc", "wavlm_base_plus"])
def test_full_size_base_models_run(name, request):
    if "slow" not in (request.config.option.markexpr or ""):
        pytest.skip("builds 95M-parameter models; run with -m slow")
    model = zoo.create(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000]))
    assert out.shape[0] == 2 and torch.isfinite(out).all()
    assert 90e6 < sum(p.numel() for p in model.parameters()) < 100e6


def test_feature_extractor_stays_frozen_through_freeze_and_unfreeze():
    model = create_tiny("wav2vec2_base_cls", num_classes=3, freeze="feature_extractor")
    assert not any(p.requires_grad for p in model.feature_extractor.parameters())
    assert all(p.requires_grad for n, p in model.named_parameters() if not n.startswith("feature_extractor"))
    unfreeze(model)  # a strategy thawing everything still leaves the convolutions untouched
    model.train()
    model(torch.randn(2, 4000), torch.tensor([4000, 3000])).sum().backward()
    assert all(p.grad is None for p in model.feature_extractor.parameters())
    assert model.classifier.weight.grad is not None
    assert model.encoder.transformer.layers[0].attention.q_proj.weight.grad is not None
    freeze(model, "backbone")
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["classifier.weight", "classifier.bias"]

    thawed = create_tiny("wav2vec2_base_cls", num_classes=3, freeze_feature_extractor=False)
    thawed(torch.randn(1, 4000)).sum().backward()
    assert all(p.grad is not None for p in thawed.feature_extractor.parameters())


def test_num_classes_zero_gives_pooled_features_and_recipes_resolve():
    model = zoo.create("kws_cnn_s", num_classes=0).eval()
    assert tuple(model(torch.randn(3, 16000)).shape) == (3, 128)
    recipe = zoo.get_card("wav2vec2_ft")
    assert recipe.recipe.options == {"pretrained": True, "freeze": "feature_extractor"}
    assert recipe.recipe.required == ("num_classes",) and recipe.default_weights == "torchaudio"
    with pytest.raises(zoo.InvalidArgumentError, match="num_classes"):
        zoo.create("kws_ft")
    kws = zoo.create("kws_ft", num_classes=5)
    assert zoo.card_of(kws).num_classes == 5 and kws.classifier.out_features == 5
    assert 200_000 < sum(p.numel() for p in kws.parameters()) < 300_000


def test_feature_extraction_card_rejects_num_classes_clearly():
    card = zoo.get_card("wav2vec2_base")
    with pytest.raises(zoo.InvalidArgumentError, match="_cls"):
        import_builder(card)(**card.defaults, num_classes=3)
    with pytest.raises(zoo.InvalidArgumentError, match="does not take"):
        zoo.create("wav2vec2_base", encoder_num_heads_typo=3)
    assert dataclasses.replace(card).extra["hf_model_types"] == ["wav2vec2"]


@pytest.mark.parametrize("name", ["hubert_base_cls", "wavlm_base_cls"])
def test_card_lora_targets_adapt_the_encoder_and_keep_outputs(name):
    from zoo.finetune.lora import apply_lora, merge_lora

    model = create_tiny(name, num_classes=3).eval()
    x = torch.randn(2, 4000)
    with torch.no_grad():
        before = model(x)
    adapted = apply_lora(model, rank=2)
    assert len(adapted) == 4  # two layers: q and v projections, or the two feed-forward Linear layers
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"encoder", "classifier"}
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-6)
    merge_lora(model)
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-6)
