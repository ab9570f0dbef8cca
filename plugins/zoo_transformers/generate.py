"""Write catalog.json: the curated checkpoints as cards, their structure read off the models built on the meta
device (no memory, no download) from configs of the published shapes.

Run ``python -m zoo_transformers.generate`` after changing `ENTRIES` (needs torch and transformers).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
HALF = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
DEBERTA_V3 = {"relative_attention": True, "position_biased_input": False, "pos_att_type": ["p2c", "c2p"],
              "norm_rel_ebd": "layer_norm", "max_relative_positions": -1, "position_buckets": 256,
              "vocab_size": 128100, "type_vocab_size": 0}
# The weights file of the repos whose main branch has no model.safetensors (pickled PyTorch weights only)
BIN = "pytorch_model.bin"
LARGE_AUDIO = {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096,
               "feat_extract_norm": "layer", "do_stable_layer_norm": True, "conv_bias": True}


def shape(hidden: int, layers: int, heads: int | None = None) -> dict[str, Any]:
    return {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads or hidden // 64,
            "intermediate_size": 4 * hidden}


@dataclass
class Entry:
    """One published checkpoint: what is known about it without downloading it."""

    name: str
    repo: str
    task: str
    license: str
    model_type: str
    description: str
    config: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    labels: list[str] | None = None
    input: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    filename: str = "model.safetensors"


ENTRIES = [
    # Text encoders and classifiers.
    Entry("deberta-v3-small", "microsoft/deberta-v3-small", "feature-extraction", "MIT", "deberta-v2",
          "DeBERTa-v3 small (6 layers, 768-d), English", {**shape(768, 6, 12), **DEBERTA_V3}, filename=BIN),
    Entry("deberta-v3-base", "microsoft/deberta-v3-base", "feature-extraction", "MIT", "deberta-v2",
          "DeBERTa-v3 base (12 layers, 768-d), English", {**shape(768, 12), **DEBERTA_V3}, filename=BIN),
    Entry("deberta-v3-large", "microsoft/deberta-v3-large", "feature-extraction", "MIT", "deberta-v2",
          "DeBERTa-v3 large (24 layers, 1024-d), English", {**shape(1024, 24), **DEBERTA_V3}, filename=BIN),
    Entry("mdeberta-v3-base", "microsoft/mdeberta-v3-base", "feature-extraction", "MIT", "deberta-v2",
          "mDeBERTa-v3 base, multilingual (100 languages)", {**shape(768, 12), **DEBERTA_V3, "vocab_size": 251000},
          filename=BIN),
    Entry("deberta-v3-base-nli", "MoritzLaurer/DeBERTa-v3-base-mnli-fever-anli", "text-classification", "MIT",
          "deberta-v2", "DeBERTa-v3 base fine-tuned for natural language inference (MNLI, FEVER, ANLI)",
          {**shape(768, 12), **DEBERTA_V3, "num_labels": 3}, num_classes=3),
    Entry("modernbert-base", "answerdotai/ModernBERT-base", "feature-extraction", "Apache-2.0", "modernbert",
          "ModernBERT base (22 layers, 768-d, 8192 tokens)", {"hidden_size": 768, "num_hidden_layers": 22,
                                                               "num_attention_heads": 12, "intermediate_size": 1152},
          input={"max_length": 8192}),
    Entry("modernbert-large", "answerdotai/ModernBERT-large", "feature-extraction", "Apache-2.0", "modernbert",
          "ModernBERT large (28 layers, 1024-d, 8192 tokens)", {"hidden_size": 1024, "num_hidden_layers": 28,
                                                                 "num_attention_heads": 16, "intermediate_size": 2624},
          input={"max_length": 8192}),
    Entry("xlm-roberta-base", "FacebookAI/xlm-roberta-base", "feature-extraction", "MIT", "xlm-roberta",
          "XLM-RoBERTa base, multilingual (100 languages)", {**shape(768, 12), "vocab_size": 250002}),
    Entry("xlm-roberta-large", "FacebookAI/xlm-roberta-large", "feature-extraction", "MIT", "xlm-roberta",
          "XLM-RoBERTa large, multilingual (100 languages)", {**shape(1024, 24), "vocab_size": 250002}),
    # Its model card names no licence (no `license:` metadata): the Hub's id for that, not the base model's MIT.
    Entry("xlm-roberta-large-ner", "FacebookAI/xlm-roberta-large-finetuned-conll03-english", "token-classification",
          "unknown", "xlm-roberta", "XLM-RoBERTa large fine-tuned for English named entities (CoNLL-2003)",
          {**shape(1024, 24), "vocab_size": 250002, "num_labels": 8}, num_classes=8),
    Entry("electra-base", "google/electra-base-discriminator", "feature-extraction", "Apache-2.0", "electra",
          "ELECTRA base discriminator (12 layers, 768-d)", {**shape(768, 12), "embedding_size": 768}, filename=BIN),
    # Sentence embedders: pooling and normalisation as their sentence-transformers modules say.
    Entry("bge-small-en-v1_5", "BAAI/bge-small-en-v1.5", "feature-extraction", "MIT", "bert",
          "BGE small English v1.5 sentence embeddings (384-d, CLS pooled, unit length)", shape(384, 12, 12),
          options={"pooling": "cls", "normalize": True}),
    Entry("bge-base-en-v1_5", "BAAI/bge-base-en-v1.5", "feature-extraction", "MIT", "bert",
          "BGE base English v1.5 sentence embeddings (768-d, CLS pooled, unit length)", shape(768, 12),
          options={"pooling": "cls", "normalize": True}),
    Entry("bge-large-en-v1_5", "BAAI/bge-large-en-v1.5", "feature-extraction", "MIT", "bert",
          "BGE large English v1.5 sentence embeddings (1024-d, CLS pooled, unit length)", shape(1024, 24),
          options={"pooling": "cls", "normalize": True}),
    Entry("e5-small-v2", "intfloat/e5-small-v2", "feature-extraction", "MIT", "bert",
          "E5 small v2 sentence embeddings (384-d, mean pooled, unit length); prefix 'query: ' / 'passage: '",
          shape(384, 12, 12), options={"pooling": "mean", "normalize": True}),
    Entry("e5-base-v2", "intfloat/e5-base-v2", "feature-extraction", "MIT", "bert",
          "E5 base v2 sentence embeddings (768-d, mean pooled, unit length); prefix 'query: ' / 'passage: '",
          shape(768, 12), options={"pooling": "mean", "normalize": True}),
    Entry("multilingual-e5-small", "intfloat/multilingual-e5-small", "feature-extraction", "MIT", "bert",
          "Multilingual E5 small sentence embeddings (384-d, mean pooled, unit length)",
          {**shape(384, 12, 12), "vocab_size": 250037}, options={"pooling": "mean", "normalize": True}),
    Entry("all-mpnet-base-v2", "sentence-transformers/all-mpnet-base-v2", "feature-extraction", "Apache-2.0",
          "mpnet", "all-mpnet-base-v2 sentence embeddings (768-d, mean pooled, unit length)", shape(768, 12),
          input={"max_length": 384}, options={"pooling": "mean", "normalize": True}),
    # Images.
    Entry("vit-base-patch16-224", "google/vit-base-patch16-224", "image-classification", "Apache-2.0", "vit",
          "ViT-B/16 fine-tuned on ImageNet-1k (224 px)", {"num_labels": 1000}, num_classes=1000,
          input={"size": 224, **HALF}),
    Entry("vit-base-patch16-224-in21k", "google/vit-base-patch16-224-in21k", "feature-extraction", "Apache-2.0",
          "vit", "ViT-B/16 pre-trained on ImageNet-21k (224 px), image features", input={"size": 224, **HALF}),
    Entry("dinov2-small", "facebook/dinov2-small", "feature-extraction", "Apache-2.0", "dinov2",
          "DINOv2 ViT-S/14 self-supervised image features (384-d)", {**shape(384, 12, 6), "patch_size": 14},
          input={"size": 224, "resize_size": 256, "interpolation": "bicubic", **IMAGENET}),
    Entry("dinov2-base", "facebook/dinov2-base", "feature-extraction", "Apache-2.0", "dinov2",
          "DINOv2 ViT-B/14 self-supervised image features (768-d)", {**shape(768, 12), "patch_size": 14},
          input={"size": 224, "resize_size": 256, "interpolation": "bicubic", **IMAGENET}),
    Entry("dinov2-large", "facebook/dinov2-large", "feature-extraction", "Apache-2.0", "dinov2",
          "DINOv2 ViT-L/14 self-supervised image features (1024-d)", {**shape(1024, 24), "patch_size": 14},
          input={"size": 224, "resize_size": 256, "interpolation": "bicubic", **IMAGENET}),
    Entry("beit-base-patch16-224", "microsoft/beit-base-patch16-224", "image-classification", "Apache-2.0", "beit",
          "BEiT-B/16 fine-tuned on ImageNet-1k (224 px)",
          {"num_labels": 1000, "use_relative_position_bias": True, "use_mean_pooling": True,
           "layer_scale_init_value": 0.1}, num_classes=1000, input={"size": 224, **HALF, "interpolation": "bicubic"}),
    Entry("convnext-tiny-224", "facebook/convnext-tiny-224", "image-classification", "Apache-2.0", "convnext",
          "ConvNeXt-T fine-tuned on ImageNet-1k (224 px)", {"num_labels": 1000}, num_classes=1000,
          input={"size": 224, "resize_size": 256, "interpolation": "bicubic", **IMAGENET}, filename=BIN),
    Entry("convnext-base-224", "facebook/convnext-base-224", "image-classification", "Apache-2.0", "convnext",
          "ConvNeXt-B fine-tuned on ImageNet-1k (224 px)",
          {"num_labels": 1000, "hidden_sizes": [128, 256, 512, 1024], "depths": [3, 3, 27, 3]}, num_classes=1000,
          input={"size": 224, "resize_size": 256, "interpolation": "bicubic", **IMAGENET}, filename=BIN),
    # Audio.
    Entry("ast-audioset", "MIT/ast-finetuned-audioset-10-10-0.4593", "audio-classification", "BSD-3-Clause",
          "audio-spectrogram-transformer", "Audio Spectrogram Transformer fine-tuned on AudioSet (527 sound classes)",
          {"num_labels": 527}, num_classes=527),
    Entry("wav2vec2-base-superb-ks", "superb/wav2vec2-base-superb-ks", "audio-classification", "Apache-2.0",
          "wav2vec2", "wav2vec 2.0 base fine-tuned for keyword spotting (SUPERB KS, Speech Commands, 12 classes)",
          {"num_labels": 12, "use_weighted_layer_sum": True}, num_classes=12, filename=BIN),
    Entry("hubert-base-superb-er", "superb/hubert-base-superb-er", "audio-classification", "Apache-2.0", "hubert",
          "HuBERT base fine-tuned for emotion recognition (SUPERB ER, IEMOCAP, 4 classes)",
          {"num_labels": 4, "use_weighted_layer_sum": True}, num_classes=4, filename=BIN),
    Entry("wav2vec2-base-960h", "facebook/wav2vec2-base-960h", "automatic-speech-recognition", "Apache-2.0",
          "wav2vec2", "wav2vec 2.0 base fine-tuned on LibriSpeech 960 h for English speech recognition (CTC)",
          {"vocab_size": 32}, num_classes=32),
    Entry("hubert-large-ls960-ft", "facebook/hubert-large-ls960-ft", "automatic-speech-recognition", "Apache-2.0",
          "hubert", "HuBERT large fine-tuned on LibriSpeech 960 h for English speech recognition (CTC)",
          {**LARGE_AUDIO, "vocab_size": 32}, num_classes=32, filename=BIN),
    Entry("wav2vec2-base", "facebook/wav2vec2-base", "feature-extraction", "Apache-2.0", "wav2vec2",
          "wav2vec 2.0 base, self-supervised speech features (768-d)", filename=BIN),
]


TINY_TEXT = {"vocab_size": 1000, "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 128, "max_position_embeddings": 128}
TINY_AUDIO = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128,
              "conv_dim": [32] * 7, "num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4}
# The family's cards for any model type: built alone (no checkpoint), a tiny random model of this type.
GENERIC = {
    "text-classification": ("bert", TINY_TEXT),
    "token-classification": ("bert", TINY_TEXT),
    "feature-extraction": ("bert", TINY_TEXT),
    "image-classification": ("vit", {"image_size": 224, "patch_size": 32, "hidden_size": 64,
                                     "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}),
    "audio-classification": ("wav2vec2", TINY_AUDIO),
    "automatic-speech-recognition": ("wav2vec2", TINY_AUDIO),
}
CHECKPOINT_CARD = "zoo_transformers.card:checkpoint_card"
SENTENCE_POOLINGS = ["cls", "mean", "max", "lasttoken"]


def generic_card(task: str) -> dict[str, Any]:
    """The card that builds any transformers checkpoint of `task` whose model type no native family claims."""
    import transformers

    from .card import FIT_LAYOUT, derive

    model_type, values = GENERIC[task]
    config = transformers.AutoConfig.for_model(model_type, **values).to_dict()
    config = {k: v for k, v in config.items() if k not in ("transformers_version", "dtype", "torch_dtype")}
    derived = derive({"task": task, "config": config}, trained_head=False)
    modality = {"vit": "image", "wav2vec2": "audio"}.get(model_type, "text")
    spec = {"image": {"kind": "image", "size": 224, **HALF}, "audio": {"kind": "audio", "sample_rate": 16000},
            "text": {"kind": "text", "max_length": 128}}[modality]
    extra = {**{k: v for k, v in derived["extra"].items() if k not in ("hf_key_map_args",)},
             "hf_model_types": ["*"], "hf_card": CHECKPOINT_CARD, "hf_key_map": FIT_LAYOUT}
    if task == "feature-extraction":
        extra["sentence_poolings"] = SENTENCE_POOLINGS
    return {
        "name": f"transformers/{task}", "task": task, "modality": modality,
        "description": f"any Hugging Face transformers checkpoint for {task}: zoo.create('hf-hub:org/repo') or "
                       f"'local-dir:PATH' (card data read from the checkpoint); alone, a tiny random {model_type}",
        "defaults": {"task": task, "config": config, "num_layers": derived["num_layers"]}, "input": spec,
        "head": derived["head"], "layer_groups": derived["layer_groups"], "num_features": derived["num_features"],
        "feature_stages": derived["feature_stages"], "extra": extra,
    }


def entry_card(entry: Entry) -> dict[str, Any]:
    """The card of one entry, as catalog.json stores it."""
    import transformers

    from .card import derive

    config = transformers.AutoConfig.for_model(entry.model_type, **entry.config).to_dict()
    shape = {k: v for k, v in config.items() if k not in ("transformers_version", "_name_or_path", "dtype",
                                                           "torch_dtype", "id2label", "label2id")}
    defaults = {"task": entry.task, **entry.options}
    derived = derive({**defaults, "config": config}, trained_head=entry.task != "feature-extraction")
    modality = {"image-classification": "image", "audio-classification": "audio",
                "automatic-speech-recognition": "audio"}.get(entry.task)
    if modality is None:
        from .tasks import modality_of

        modality = modality_of(config)
    spec: dict[str, Any] = {"kind": modality, **entry.input}
    if modality == "text":
        spec.setdefault("max_length", 512)
        spec["tokenizer"] = f"hf-hub:{entry.repo}"
    elif modality == "audio":
        spec = {"kind": "audio", "sample_rate": 16000}
    extra = {k: v for k, v in derived["extra"].items() if k not in ("hf_key_map", "hf_key_map_args")}
    weights = {"source": f"hf-hub:{entry.repo}", "filename": entry.filename, "license": entry.license,
               "num_classes": entry.num_classes, "labels": entry.labels,
               "key_map": catalogue_key_map(entry.name), "description": f"{entry.repo} from the Hugging Face Hub"}
    return {
        "name": f"transformers/{entry.name}", "task": entry.task, "modality": modality,
        "description": entry.description, "defaults": {**defaults, "repo": entry.repo,
                                                       "num_layers": derived["num_layers"], "shape": shape},
        "input": spec, "head": derived["head"], "layer_groups": derived["layer_groups"],
        "num_features": derived["num_features"], "weights": {"hf": weights}, "default_weights": "hf",
        "feature_stages": derived["feature_stages"], "extra": {**extra, "hf_repo": entry.repo,
                                                               "hf_model_type": entry.model_type},
    }


def catalogue_key_map(name: str) -> str:
    return "zoo_transformers.keys:catalogue__" + name.replace("-", "_")


def main(path: Path | None = None) -> Path:
    import transformers

    from .catalog import CATALOG, FORMAT_VERSION

    path = path or CATALOG
    data = {"format": FORMAT_VERSION, "generated_by": "python -m zoo_transformers.generate",
            "transformers": transformers.__version__,
            "cards": [generic_card(task) for task in GENERIC] + [entry_card(e) for e in ENTRIES]}
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    print(main())
