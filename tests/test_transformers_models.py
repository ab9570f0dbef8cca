"""One tiny checkpoint per model type and task, written by transformers: through zoo.create('local-dir:...')
the transformers family gives transformers' own outputs (logits, pooled features, hidden states)."""
from __future__ import annotations

import pytest
import torch
from conftest import run_python
from transformers_helpers import family_fixture, random_model, save, text_batch, transformers

__all__ = ["family_fixture"]

T = transformers
TEXT = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 37, "max_position_embeddings": 64}
VIT = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
       "intermediate_size": 37}
AUDIO = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 37,
         "conv_dim": (16, 16), "conv_stride": (5, 4), "conv_kernel": (10, 8), "num_conv_pos_embeddings": 16,
         "num_conv_pos_embedding_groups": 2}


def modernbert():
    return T.ModernBertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                              intermediate_size=40, max_position_embeddings=64, global_attn_every_n_layers=2,
                              local_attention=16, pad_token_id=0, num_labels=3)


CASES = {
    "modernbert-sequence": ("AutoModelForSequenceClassification", modernbert, "text-classification"),
    "deberta-v2-token": ("AutoModelForTokenClassification", lambda: T.DebertaV2Config(**TEXT, num_labels=5),
                         "token-classification"),
    "electra-sequence": ("AutoModelForSequenceClassification",
                         lambda: T.ElectraConfig(**TEXT, embedding_size=16, num_labels=2), "text-classification"),
    "vit": ("AutoModelForImageClassification", lambda: T.ViTConfig(**VIT, num_labels=4), "image-classification"),
    "dinov2": ("AutoModelForImageClassification", lambda: T.Dinov2Config(**VIT, num_labels=4),
               "image-classification"),
    "beit": ("AutoModelForImageClassification", lambda: T.BeitConfig(**VIT, num_labels=4, vocab_size=50),
             "image-classification"),
    "convnext": ("AutoModelForImageClassification",
                 lambda: T.ConvNextConfig(num_channels=3, num_stages=2, hidden_sizes=[8, 16], depths=[1, 1],
                                          num_labels=4, image_size=32), "image-classification"),
    "ast": ("AutoModelForAudioClassification",
            lambda: T.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                                num_mel_bins=16, max_length=48, frequency_stride=8, time_stride=8, num_labels=3),
            "audio-classification"),
    "data2vec-audio-sequence": ("AutoModelForAudioClassification",
                                lambda: T.Data2VecAudioConfig(**AUDIO, num_labels=3), "audio-classification"),
    "data2vec-audio-ctc": ("AutoModelForCTC", lambda: T.Data2VecAudioConfig(**AUDIO, vocab_size=12),
                           "automatic-speech-recognition"),
}


def inputs(task: str, config):
    g = torch.Generator().manual_seed(2)
    if task.startswith("image"):
        pixels = torch.randn(2, 3, 32, 32, generator=g)
        return (pixels,), {"pixel_values": pixels}
    if task.startswith(("audio", "automatic")):
        waves = torch.randn(2, 1600, generator=g)
        return (waves,), None
    batch = text_batch()
    return batch, batch


def their_output(model, task, config, ours_in, theirs_in, directory):
    if theirs_in is not None:
        return model(**theirs_in).logits
    waves = ours_in[0]
    extractor = (T.ASTFeatureExtractor(num_mel_bins=config.num_mel_bins, max_length=config.max_length)
                 if config.model_type == "audio-spectrogram-transformer" else
                 T.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=True))
    extractor.save_pretrained(directory)
    features = extractor([w.numpy() for w in waves], sampling_rate=16000, return_tensors="pt")
    return model(**{k: v for k, v in features.items() if k in ("input_values", "attention_mask")}).logits


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_equal_transformers(family, tmp_path, case):
    auto, make_config, task = CASES[case]
    config = make_config()
    theirs = random_model(auto, config)
    directory = save(theirs, tmp_path / "ckpt")
    ours_in, theirs_in = inputs(task, config)
    with torch.no_grad():
        expected = their_output(theirs, task, config, ours_in, theirs_in, directory)
    ours = family.create(f"local-dir:{directory}").eval()
    with torch.no_grad():
        got = ours(**ours_in) if isinstance(ours_in, dict) else ours(*ours_in)
    card = ours.zoo_card
    assert (card.family, card.task) == ("transformers", task)
    tolerance = 1e-4 if config.model_type == "audio-spectrogram-transformer" else 1e-5  # float32 filter banks
    torch.testing.assert_close(got, expected, atol=tolerance, rtol=0)
    # Card data read off the model: the head's outputs, layer groups from input to head, LoRA targets.
    modules = dict(ours.named_modules())
    assert card.head in modules and card.layer_groups[-1].split(".")[0] == card.head.split(".")[0]
    assert all(group in modules for group in card.layer_groups)
    assert card.extra["lora_targets"] and all("*" in t for t in card.extra["lora_targets"])
    # Hidden states of every layer are transformers' own.
    last, hidden = ours.forward_intermediates(*ours_in.values()) if isinstance(ours_in, dict) else \
        ours.forward_intermediates(*ours_in)
    assert len(hidden) == ours.num_intermediates >= 2


@pytest.mark.parametrize("case, shapes", [("vit", [(2, 32, 4, 4)] * 2), ("convnext", [(2, 8, 8, 8), (2, 16, 4, 4)])])
def test_image_feature_maps(family, tmp_path, case, shapes):
    auto, make_config, _ = CASES[case]
    directory = save(random_model(auto, make_config()), tmp_path / "ckpt")
    model = family.create(f"local-dir:{directory}", features_only=True).eval()
    with torch.no_grad():
        maps = model(torch.randn(2, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == shapes


def test_filter_banks_work_on_cpu_after_a_meta_device_build_used_them_first():
    # a meta-device build (the plugin check, a card on meta) may be the first to compute filter banks
    done = run_python("""
        import torch
        from zoo_transformers.model import filterbanks
        settings = {"num_mel_bins": 8, "max_length": 20, "sampling_rate": 16000, "mean": -4.0, "std": 4.0}
        with torch.device("meta"):
            filterbanks(torch.zeros(1, 4000), None, settings)
        print(tuple(filterbanks(torch.randn(1, 4000), None, settings).shape))
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "(1, 20, 8)"
