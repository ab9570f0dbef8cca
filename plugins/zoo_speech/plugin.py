"""Registers the speech family. zoo imports this module to list models, so it imports no torch.

For each encoder in `architectures.ENCODERS` three cards share one architecture:
``NAME`` (feature-extraction), ``NAME_cls`` (audio-classification) and ``NAME_ctc``
(automatic-speech-recognition); plus the keyword-spotting CNNs and two fine-tune recipes.
"""
from __future__ import annotations

import zoo

from .architectures import (
    ASR_PARAM_OVERRIDES,
    EN_CTC_LABELS,
    ENCODERS,
    SAMPLE_RATE,
    TORCHAUDIO_MODELS,
    Encoder,
    layer_groups,
)

_MODULE = "zoo_speech"
_KEYMAPS = f"{_MODULE}.keymaps"
_INPUT = zoo.AudioInput(sample_rate=SAMPLE_RATE)
_LICENSE = "MIT"  # fairseq (wav2vec 2.0, HuBERT) and unilm (WavLM) release their weights under MIT
_TASKS = {  # task: (name suffix, builder, config converter, key map, head)
    "feature-extraction": ("", "build_speech_encoder", "hf_config_to_encoder_kwargs", "hf_encoder_state", None),
    "audio-classification": ("_cls", "build_speech_classifier", "hf_config_to_classifier_kwargs", "hf_state",
                             "classifier"),
    "automatic-speech-recognition": ("_ctc", "build_speech_recognizer", "hf_config_to_recognizer_kwargs",
                                     "hf_state", "ctc_head"),
}
# LoRA adapters: the attention's query/value projections; WavLM's attention packs q/k/v into one
# nn.MultiheadAttention, so its adapters go on the feed-forward layers instead.
_LORA = {"wav2vec2": ["encoder.transformer.layers.*.attention.q_proj", "encoder.transformer.layers.*.attention.v_proj"],
         "wavlm": ["encoder.transformer.layers.*.feed_forward"]}
# One card per (Hugging Face model_type, task) answers for "local-dir:" and "hf-hub:" checkpoints;
# the config converter rebuilds whatever size the checkpoint has.
# zoo.save_pretrained writes a folder plain transformers loads too (wav2vec2 / HuBERT / WavLM classes).
_INTERCHANGE = {"saved_config": f"{_MODULE}.interchange:transformers_config",
                "saved_state": f"{_MODULE}.interchange:transformers_state",
                "saved_state_reader": f"{_MODULE}.interchange:zoo_state"}
_HF_ANSWERING = {"wav2vec2_base", "hubert_base", "wavlm_base"}
# zoo.create(name, drop_rate=..., drop_path_rate=...): the transformer's dropout, and its LayerDrop (each
# layer skipped in training with that probability: stochastic depth over whole layers).
_ENCODER_OPTIONS = {"drop_rate": {"keyword": "encoder_dropout"}, "drop_path_rate": {"keyword": "encoder_layer_drop"}}


def _encoder_weights(enc: Encoder) -> dict[str, zoo.WeightsCard]:
    return {
        "torchaudio": zoo.WeightsCard(
            source=TORCHAUDIO_MODELS + enc.path, license=_LICENSE, key_map=f"{_KEYMAPS}:torchaudio_encoder_state",
            description=f"torchaudio.pipelines.{enc.bundle}: self-supervised on {enc.pretrain_data} "
                        "(no task head; torchaudio publishes no checksum for this file)"),
        "hf": zoo.WeightsCard(
            source=f"hf-hub:{enc.hf_repo}", filename="pytorch_model.bin", key_map=f"{_KEYMAPS}:hf_encoder_state",
            description=f"{enc.hf_repo} on the Hugging Face Hub: self-supervised on {enc.pretrain_data} "
                        "(no task head)"),
    }


def _ctc_weights(enc: Encoder) -> dict[str, zoo.WeightsCard]:
    weights = {}
    for asr in enc.asr:
        weights[asr.tag] = zoo.WeightsCard(
            source=TORCHAUDIO_MODELS + asr.path, num_classes=len(EN_CTC_LABELS), labels=EN_CTC_LABELS,
            license=_LICENSE, key_map=f"{_KEYMAPS}:torchaudio_ctc_state",
            description=f"torchaudio CTC bundle: {asr.description}; English characters, '|' between words")
        if asr.hf_repo:
            weights["hf_" + asr.tag[len("asr_"):]] = zoo.WeightsCard(
                source=f"hf-hub:{asr.hf_repo}", filename="pytorch_model.bin", num_classes=len(EN_CTC_LABELS),
                labels=EN_CTC_LABELS, key_map=f"{_KEYMAPS}:hf_ctc_english_state",
                description=f"{asr.hf_repo} on the Hugging Face Hub: {asr.description}")
    return weights


def _encoder_cards(enc: Encoder) -> list[zoo.ModelCard]:
    cards = []
    for task, (suffix, builder, converter, key_map, head) in _TASKS.items():
        params = dict(enc.params)
        defaults = {"model_type": enc.model_type, **params, "normalize_waveform": enc.normalize_waveform,
                    "freeze_feature_extractor": head is not None}
        if task == "audio-classification":
            defaults.update(num_classes=2, head_dropout=0.0)
            weights, what = _encoder_weights(enc), "clip classification: masked mean pooling into a linear head"
        elif task == "automatic-speech-recognition":
            defaults.update(ASR_PARAM_OVERRIDES.get(enc.name, {}))
            defaults.update(num_classes=len(EN_CTC_LABELS), labels=list(EN_CTC_LABELS), blank=0, head_dropout=0.0)
            weights, what = _ctc_weights(enc), "CTC speech recognition with greedy decoding"
        else:
            weights, what = _encoder_weights(enc), "hidden states of the last layer"
        extra = {"torchaudio_bundle": enc.bundle, "hf_repo": enc.hf_repo, "lora_targets": _LORA[enc.model_type],
                 "hf_model_type": enc.hf_model_type, **_INTERCHANGE}
        if enc.name in _HF_ANSWERING:
            extra.update(hf_model_types=[enc.hf_model_type], hf_config_to_kwargs=f"{_KEYMAPS}:{converter}",
                         hf_key_map=f"{_KEYMAPS}:{key_map}", hf_layer_groups=f"{_MODULE}.architectures:layer_groups")
        cards.append(zoo.ModelCard(
            name=enc.name + suffix,
            builder=f"{_MODULE}.encoders:{builder}",
            task=task,
            modality="audio",
            family=enc.family,
            description=f"{enc.description}; {what}",
            defaults=defaults,
            input=_INPUT,
            head=head,
            layer_groups=layer_groups(params, head),
            weights=weights,
            default_weights=next(iter(weights), None),
            num_features=params["encoder_embed_dim"],
            extra=extra,
            create_options=_ENCODER_OPTIONS,
        ))
    return cards


def _kws_cards() -> list[zoo.ModelCard]:
    cards = []
    for size, width in (("s", 32), ("m", 48)):
        conv_params = 9 * (width + 26 * width * width)  # 3x3 kernels: 1->w, w->2w, 2w->4w, 4w->4w channels
        cards.append(zoo.ModelCard(
            name=f"kws_cnn_{size}",
            builder=f"{_MODULE}.kws:build_keyword_spotter",
            task="audio-classification",
            modality="audio",
            family="kws",
            description=f"keyword spotting: 40 log-mel bands into a 4-block CNN of width {width} "
                        f"(~{conv_params // 1000}k params)",
            defaults={"num_classes": 10, "width": width, "n_mels": 40, "sample_rate": SAMPLE_RATE, "dropout": 0.1},
            input=zoo.AudioInput(sample_rate=SAMPLE_RATE, clip_seconds=1.0),
            head="classifier",
            layer_groups=["input_norm", "blocks.0", "blocks.1", "blocks.2", "blocks.3", "classifier"],
            num_features=4 * width,
            create_options={"drop_rate": {"keyword": "dropout"}},  # the dropout before the classifier
        ))
    return cards


def register(registry) -> None:
    for enc in ENCODERS:
        for card in _encoder_cards(enc):
            registry.register(card)
    for card in _kws_cards():
        registry.register(card)
    registry.register(zoo.Recipe(
        name="wav2vec2_ft",
        model="wav2vec2_base_cls",
        description="wav2vec 2.0 base with torchaudio's pretrained encoder, its convolutional feature "
                    "extractor frozen, and a new classification head of num_classes",
        options={"pretrained": True, "freeze": "feature_extractor"},
        required=("num_classes",),
    ))
    registry.register(zoo.Recipe(
        name="kws_ft",
        model="kws_cnn_s",
        description="the small keyword-spotting CNN with num_classes outputs, trained from scratch (minutes on a CPU)",
        options={"pretrained": False},
        required=("num_classes",),
    ))
