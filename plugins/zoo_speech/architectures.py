"""The speech encoders as data: torchaudio builder keywords, bundle weights and Hub repositories.

Plain data, no torch: the plugin's `register` reads it to write cards. The keyword sets
equal the ``_params`` of torchaudio's pretrained bundles (``torchaudio.pipelines.WAV2VEC2_BASE``
and friends; a test checks they still agree), so a card built from them loads the
bundle's weights. torchaudio publishes the weight files under `TORCHAUDIO_MODELS` with
their file names, but no checksums, so the cards carry none for them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

TORCHAUDIO_MODELS = "https://download.pytorch.org/torchaudio/models/"
SAMPLE_RATE = 16000
# Character set of torchaudio's English CTC bundles, after the blank "-" ("|" separates words).
EN_CTC_LABELS = ("-", "|", "E", "T", "A", "O", "N", "I", "H", "S", "R", "D", "L", "U", "M", "W", "C", "F",
                 "G", "Y", "P", "B", "V", "K", "'", "X", "J", "Q", "Z")

_CONV = [[512, 10, 5], [512, 3, 2], [512, 3, 2], [512, 3, 2], [512, 3, 2], [512, 2, 2], [512, 2, 2]]


def _params(*, mode: str, conv_bias: bool, dim: int, layers: int, heads: int, ff: int, norm_first: bool,
            proj_drop: float, attn_drop: float, drop: float, layer_drop: float, ff_drop: float = 0.0) -> dict:
    return {
        "extractor_mode": mode, "extractor_conv_layer_config": [list(c) for c in _CONV],
        "extractor_conv_bias": conv_bias, "encoder_embed_dim": dim, "encoder_projection_dropout": proj_drop,
        "encoder_pos_conv_kernel": 128, "encoder_pos_conv_groups": 16, "encoder_num_layers": layers,
        "encoder_num_heads": heads, "encoder_attention_dropout": attn_drop, "encoder_ff_interm_features": ff,
        "encoder_ff_interm_dropout": ff_drop, "encoder_dropout": drop, "encoder_layer_norm_first": norm_first,
        "encoder_layer_drop": layer_drop,
    }


_BASE = _params(mode="group_norm", conv_bias=False, dim=768, layers=12, heads=12, ff=3072, norm_first=False,
                proj_drop=0.1, attn_drop=0.1, drop=0.1, layer_drop=0.05)
_WAVLM = {"encoder_num_buckets": 320, "encoder_max_distance": 800}


@dataclass(frozen=True)
class AsrWeights:
    """A torchaudio CTC bundle: its file, tag, training data and Hub twin (if any)."""

    tag: str
    path: str
    description: str
    hf_repo: str | None = None


@dataclass(frozen=True)
class Encoder:
    """One pretrained speech encoder architecture and where its weights live."""

    name: str
    family: str
    model_type: str  # "wav2vec2" (wav2vec 2.0 and HuBERT share the module) or "wavlm"
    params: dict
    bundle: str  # torchaudio.pipelines attribute name
    path: str  # torchaudio weights file (under TORCHAUDIO_MODELS)
    hf_repo: str
    description: str
    pretrain_data: str
    asr: tuple[AsrWeights, ...] = field(default=())

    @property
    def normalize_waveform(self) -> bool:
        """Models with a layer-norm feature extractor were pretrained on per-utterance normalized audio."""
        return self.params["extractor_mode"] == "layer_norm"

    @property
    def hf_model_type(self) -> str:
        return {"wav2vec2": "wav2vec2", "hubert": "hubert", "wavlm": "wavlm"}[self.family]


def _asr(prefix: str, data: str, hf: dict[str, str] | None = None) -> tuple[AsrWeights, ...]:
    hf = hf or {}
    names = (("ls960", "960h", "LibriSpeech 960 h"), ("ls100", "100h", "LibriSpeech train-clean-100"),
             ("ll10m", "10m", "Libri-Light 10 min"))
    return tuple(AsrWeights(tag=f"asr_{suffix}", path=f"{prefix}_asr_{file_tag}.pth",
                            description=f"pretrained on {data}, CTC fine-tuned on {what}", hf_repo=hf.get(suffix))
                 for file_tag, suffix, what in names)


ENCODERS: tuple[Encoder, ...] = (
    Encoder("wav2vec2_base", "wav2vec2", "wav2vec2", _BASE, "WAV2VEC2_BASE", "wav2vec2_fairseq_base_ls960.pth",
            "facebook/wav2vec2-base", "wav2vec 2.0 base: 12 layers, 768 wide, 95M params", "LibriSpeech 960 h",
            _asr("wav2vec2_fairseq_base_ls960", "LibriSpeech 960 h",
                 {"960h": "facebook/wav2vec2-base-960h", "100h": "facebook/wav2vec2-base-100h"})),
    Encoder("wav2vec2_large", "wav2vec2", "wav2vec2",
            _params(mode="group_norm", conv_bias=False, dim=1024, layers=24, heads=16, ff=4096, norm_first=False,
                    proj_drop=0.1, attn_drop=0.1, drop=0.0, layer_drop=0.2),
            "WAV2VEC2_LARGE", "wav2vec2_fairseq_large_ls960.pth", "facebook/wav2vec2-large",
            "wav2vec 2.0 large: 24 layers, 1024 wide, 317M params", "LibriSpeech 960 h",
            _asr("wav2vec2_fairseq_large_ls960", "LibriSpeech 960 h", {"960h": "facebook/wav2vec2-large-960h"})),
    Encoder("wav2vec2_large_lv60k", "wav2vec2", "wav2vec2",
            _params(mode="layer_norm", conv_bias=True, dim=1024, layers=24, heads=16, ff=4096, norm_first=True,
                    proj_drop=0.1, attn_drop=0.1, drop=0.0, layer_drop=0.0),
            "WAV2VEC2_LARGE_LV60K", "wav2vec2_fairseq_large_lv60k.pth", "facebook/wav2vec2-large-lv60",
            "wav2vec 2.0 large, pre-LN, pretrained on Libri-Light 60k h", "Libri-Light 60k h",
            _asr("wav2vec2_fairseq_large_lv60k", "Libri-Light 60k h")),
    Encoder("wav2vec2_xlsr53", "wav2vec2", "wav2vec2",
            _params(mode="layer_norm", conv_bias=True, dim=1024, layers=24, heads=16, ff=4096, norm_first=True,
                    proj_drop=0.0, attn_drop=0.0, drop=0.0, layer_drop=0.0),
            "WAV2VEC2_XLSR53", "wav2vec2_fairseq_large_xlsr53.pth", "facebook/wav2vec2-large-xlsr-53",
            "XLSR-53: wav2vec 2.0 large pretrained on 53 languages", "56k h in 53 languages"),
    Encoder("wav2vec2_xlsr_300m", "wav2vec2", "wav2vec2",
            _params(mode="layer_norm", conv_bias=True, dim=1024, layers=24, heads=16, ff=4096, norm_first=True,
                    proj_drop=0.0, attn_drop=0.0, drop=0.0, layer_drop=0.0),
            "WAV2VEC2_XLSR_300M", "wav2vec2_xlsr_300m.pth", "facebook/wav2vec2-xls-r-300m",
            "XLS-R 300M: 24 layers, 1024 wide, pretrained on 128 languages", "436k h in 128 languages"),
    Encoder("wav2vec2_xlsr_1b", "wav2vec2", "wav2vec2",
            _params(mode="layer_norm", conv_bias=True, dim=1280, layers=48, heads=16, ff=5120, norm_first=True,
                    proj_drop=0.1, attn_drop=0.0, drop=0.0, layer_drop=0.0),
            "WAV2VEC2_XLSR_1B", "wav2vec2_xlsr_1b.pth", "facebook/wav2vec2-xls-r-1b",
            "XLS-R 1B: 48 layers, 1280 wide, pretrained on 128 languages", "436k h in 128 languages"),
    Encoder("wav2vec2_xlsr_2b", "wav2vec2", "wav2vec2",
            _params(mode="layer_norm", conv_bias=True, dim=1920, layers=48, heads=16, ff=7680, norm_first=True,
                    proj_drop=0.1, attn_drop=0.0, drop=0.0, layer_drop=0.0),
            "WAV2VEC2_XLSR_2B", "wav2vec2_xlsr_2b.pth", "facebook/wav2vec2-xls-r-2b",
            "XLS-R 2B: 48 layers, 1920 wide, pretrained on 128 languages", "436k h in 128 languages"),
    Encoder("hubert_base", "hubert", "wav2vec2", _BASE, "HUBERT_BASE", "hubert_fairseq_base_ls960.pth",
            "facebook/hubert-base-ls960", "HuBERT base: 12 layers, 768 wide, 95M params", "LibriSpeech 960 h"),
    Encoder("hubert_large", "hubert", "wav2vec2",
            _params(mode="layer_norm", conv_bias=False, dim=1024, layers=24, heads=16, ff=4096, norm_first=True,
                    proj_drop=0.0, attn_drop=0.0, drop=0.0, layer_drop=0.0),
            "HUBERT_LARGE", "hubert_fairseq_large_ll60k.pth", "facebook/hubert-large-ll60k",
            "HuBERT large: 24 layers, 1024 wide, 316M params", "Libri-Light 60k h",
            (AsrWeights("asr_960h", "hubert_fairseq_large_ll60k_asr_ls960.pth",
                        "pretrained on Libri-Light 60k h, CTC fine-tuned on LibriSpeech 960 h",
                        "facebook/hubert-large-ls960-ft"),)),
    Encoder("hubert_xlarge", "hubert", "wav2vec2",
            _params(mode="layer_norm", conv_bias=False, dim=1280, layers=48, heads=16, ff=5120, norm_first=True,
                    proj_drop=0.0, attn_drop=0.0, drop=0.0, layer_drop=0.0),
            "HUBERT_XLARGE", "hubert_fairseq_xlarge_ll60k.pth", "facebook/hubert-xlarge-ll60k",
            "HuBERT X-large: 48 layers, 1280 wide, 964M params", "Libri-Light 60k h",
            (AsrWeights("asr_960h", "hubert_fairseq_xlarge_ll60k_asr_ls960.pth",
                        "pretrained on Libri-Light 60k h, CTC fine-tuned on LibriSpeech 960 h",
                        "facebook/hubert-xlarge-ls960-ft"),)),
    Encoder("wavlm_base", "wavlm", "wavlm", {**_BASE, **_WAVLM}, "WAVLM_BASE", "wavlm_base.pth",
            "microsoft/wavlm-base", "WavLM base: 12 layers, 768 wide, gated relative position bias",
            "LibriSpeech 960 h"),
    Encoder("wavlm_base_plus", "wavlm", "wavlm", {**_BASE, **_WAVLM}, "WAVLM_BASE_PLUS", "wavlm_base_plus.pth",
            "microsoft/wavlm-base-plus", "WavLM base+: WavLM base pretrained on 94k h",
            "Libri-Light 60k h, GigaSpeech 10k h, VoxPopuli 24k h"),
    Encoder("wavlm_large", "wavlm", "wavlm",
            {**_params(mode="layer_norm", conv_bias=False, dim=1024, layers=24, heads=16, ff=4096, norm_first=True,
                       proj_drop=0.1, attn_drop=0.1, drop=0.1, layer_drop=0.05), **_WAVLM},
            "WAVLM_LARGE", "wavlm_large.pth", "microsoft/wavlm-large",
            "WavLM large: 24 layers, 1024 wide, gated relative position bias",
            "Libri-Light 60k h, GigaSpeech 10k h, VoxPopuli 24k h"),
)

# The ASR bundles fine-tuned HuBERT with activation dropout; keep that for their CTC cards.
ASR_PARAM_OVERRIDES = {"hubert_large": {"encoder_ff_interm_dropout": 0.1, "encoder_layer_drop": 0.1},
                       "hubert_xlarge": {"encoder_ff_interm_dropout": 0.1, "encoder_layer_drop": 0.1}}


def layer_groups(params: dict, head: str | None) -> list[str]:
    """Module prefixes from the waveform to the head.

    The transformer's own LayerNorm runs before the first layer in post-LN models and
    after the last one in pre-LN models, so its group sits on that side.
    """
    layers = [f"encoder.transformer.layers.{i}" for i in range(params["encoder_num_layers"])]
    norm = ["encoder.transformer.layer_norm"]
    first = params["encoder_layer_norm_first"]
    groups = ["feature_extractor", "encoder.feature_projection", "encoder.transformer.pos_conv_embed"]
    groups += layers + norm if first else norm + layers
    return groups + ([head] if head else [])
