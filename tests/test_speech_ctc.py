"""Speech recognition: greedy CTC decoding, an end-to-end run from audio to text, torchaudio checkpoints."""
from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
torchaudio = pytest.importorskip("torchaudio")

from test_speech_support import TINY_ARCH, create_tiny, tiny_card  # noqa: E402

import zoo  # noqa: E402
from zoo.data.audio import collate_audio, load_audio  # noqa: E402
from zoo_speech.architectures import EN_CTC_LABELS  # noqa: E402
from zoo_speech.ctc import greedy_decode, read_vocab  # noqa: E402
from zoo_speech.demo import demo_data_dir  # noqa: E402

N_LABELS = len(EN_CTC_LABELS)


def one_hot_path(indices, size=N_LABELS):
    return torch.nn.functional.one_hot(torch.tensor(indices), size).float()[None]


def test_greedy_decoding_merges_repeats_drops_blanks_and_splits_words():
    ix = {c: i for i, c in enumerate(EN_CTC_LABELS)}
    path = [0, ix["G"], ix["G"], 0, ix["O"], ix["|"], ix["|"], 0, ix["N"], ix["O"], 0, ix["O"], ix["|"]]
    assert greedy_decode(one_hot_path(path), None, EN_CTC_LABELS) == ["GO NOO"]
    assert greedy_decode(one_hot_path(path), torch.tensor([5]), EN_CTC_LABELS) == ["GO"]
    vocab = ("<pad>", "<s>", "</s>", "<unk>", "|", "A", "B")
    assert greedy_decode(one_hot_path([5, 3, 0, 6, 4, 5], 7), None, vocab) == ["AB A"]
    with pytest.raises(zoo.ZooError, match="labels"):
        greedy_decode(one_hot_path([1, 2]), None, ("a", "b"))


def test_vocab_json_is_read_in_index_order(tmp_path):
    (tmp_path / "vocab.json").write_text('{"|": 1, "<pad>": 0, "A": 2}')
    assert read_vocab(tmp_path) == ("<pad>", "|", "A")


def test_recognizer_learns_to_spell_demo_words_end_to_end():
    """Audio files -> collate -> CTC loss -> training -> greedy decoding gives the spoken text."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        def clip(word):
            return load_audio(sorted((demo_data_dir() / "train" / word).glob("*.flac"))[0], 16000)

        texts = ["YES", "NO", "GO STOP"]
        batch = collate_audio([(clip("yes"), texts[0]), (clip("no"), texts[1]),
                               (torch.cat([clip("go"), clip("stop")]), texts[2])])
        assert batch.labels == texts and batch.mask.sum(-1).tolist() == batch.lengths.tolist()
        quiet = dict(encoder_layer_drop=0.0, encoder_dropout=0.0, encoder_attention_dropout=0.0,
                     encoder_projection_dropout=0.0)
        model = create_tiny("wav2vec2_base_ctc", freeze_feature_extractor=False, **quiet)
        index = {c: i for i, c in enumerate(model.labels)}
        targets = [torch.tensor([index[c] for c in t.replace(" ", "|")]) for t in texts]
        padded = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True)
        target_lengths = torch.tensor([len(t) for t in targets])
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        decoded = []
        for step in range(500):
            model.train()
            loss = model.ctc_loss(batch.waveforms, batch.lengths, padded, target_lengths)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step % 20 == 19:
                model.eval()
                decoded = model.transcribe(batch.waveforms, batch.lengths)
                if decoded == texts:
                    break
        assert decoded == texts
    finally:
        torch.set_num_threads(threads)


def torchaudio_checkpoint(path, *, aux: int | None):
    """A file as torchaudio's bundles ship them: its module names, old weight-norm names, fairseq's extra rows."""
    params = {**tiny_card("wav2vec2_base").defaults}
    for key in ("model_type", "normalize_waveform", "freeze_feature_extractor"):
        params.pop(key)
    params["extractor_conv_layer_config"] = [tuple(c) for c in params["extractor_conv_layer_config"]]
    torch.manual_seed(3)
    reference = torchaudio.models.wav2vec2_model(**params, aux_num_out=aux).eval()
    state = {}
    for key, value in reference.state_dict().items():
        key = key.replace("parametrizations.weight.original0", "weight_g").replace("parametrizations.weight.original1",
                                                                                 "weight_v")
        state[key] = value.clone()
    torch.save(state, path)
    return reference


def local_weights_card(name, path, **weights):
    card = tiny_card(name)
    base = next(iter(card.weights.values()))
    local = dataclasses.replace(base, source=str(path), sha256=None, filename=None, **weights)
    return dataclasses.replace(card, weights={"local": local}, default_weights="local")


def test_torchaudio_ctc_bundle_file_loads_with_the_bundle_labels(tmp_path):
    path = tmp_path / "asr.pth"
    reference = torchaudio_checkpoint(path, aux=32)
    card = local_weights_card("wav2vec2_base_ctc", path)
    assert card.weights["local"].key_map == "zoo_speech.keymaps:torchaudio_ctc_state"
    model = create_tiny("wav2vec2_base_ctc", card=card, tag="local", pretrained=True).eval()
    x = torch.randn(2, 6000) * 0.2
    with torch.no_grad():
        expected, _ = reference(x)
        got = model(x)
    keep = [0] + list(range(4, 32))  # torchaudio's bundles drop fairseq's unused rows 1-3 as well
    assert (got - expected[..., keep]).abs().max().item() <= 1e-5
    assert zoo.card_of(model).extra["weights_location"] == str(path)
    assert model.transcribe(x) == greedy_decode(expected[..., keep], None, EN_CTC_LABELS)


def test_torchaudio_encoder_file_loads_under_a_new_classification_head(tmp_path):
    path = tmp_path / "ssl.pth"
    reference = torchaudio_checkpoint(path, aux=None)
    card = local_weights_card("wav2vec2_base_cls", path)
    model = create_tiny("wav2vec2_base_cls", card=card, tag="local", pretrained=True, num_classes=5).eval()
    assert model.classifier.out_features == 5 and zoo.card_of(model).num_classes == 5
    assert not any(p.requires_grad for p in model.feature_extractor.parameters())  # kept through the meta load
    x = torch.randn(2, 6000) * 0.2
    with torch.no_grad():
        expected, _ = reference(x)
        assert (model.encode(x)[0] - expected).abs().max().item() <= 1e-5
        assert tuple(model(x).shape) == (2, 5)
    assert TINY_ARCH["encoder_embed_dim"] == model.num_features
