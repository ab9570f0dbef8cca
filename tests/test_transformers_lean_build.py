"""Creating a model of the transformers family costs no more than transformers' own loading: no initialiser runs
on parameters that are on the meta device (their values come from the checkpoint), a build with real parameters
is initialised exactly as transformers initialises it, and a repo's config is read from the Hugging Face cache
without huggingface_hub's download path."""
from __future__ import annotations

import pytest
import torch
from transformers_helpers import family_fixture, hub_cache, random_model, save, serve, text_batch, transformers

__all__ = ["family_fixture"]

SHAPE = {"vocab_size": 99, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
         "intermediate_size": 37, "embedding_size": 32, "max_position_embeddings": 64}


def electra(**options):
    return transformers.ElectraConfig(**SHAPE, **options)


@pytest.fixture
def initialised(monkeypatch):
    """The device of every tensor transformers' initialisers write (all of them go through TORCH_INIT_FUNCTIONS)."""
    from transformers import initialization

    devices: list[str] = []
    for name, function in list(initialization.TORCH_INIT_FUNCTIONS.items()):
        def spy(tensor, *args, _function=function, **kwargs):
            devices.append(tensor.device.type)
            return _function(tensor, *args, **kwargs)

        monkeypatch.setitem(initialization.TORCH_INIT_FUNCTIONS, name, spy)
    return devices


def test_a_checkpoint_loads_without_initialising_meta_parameters_and_gives_transformers_outputs(family, tmp_path,
                                                                                                 initialised):
    folder = save(random_model("AutoModelForSequenceClassification", electra(num_labels=3)), tmp_path / "ckpt")
    model = family.create(f"local-dir:{folder}", task="text-classification").eval()
    assert "meta" not in initialised
    assert not any(p.is_meta or hasattr(p, "_is_hf_initialized") for p in model.parameters())
    theirs = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
    batch = text_batch()
    with torch.no_grad():
        torch.testing.assert_close(model(**batch), theirs(**batch).logits, atol=1e-5, rtol=0)


def test_a_fresh_head_on_a_base_checkpoint_is_still_initialised(family, tmp_path):
    folder = save(random_model("AutoModelForPreTraining", electra()), tmp_path / "base")
    model = family.create(f"local-dir:{folder}", task="text-classification", num_classes=4)
    head = model.zoo_card.head
    fresh = [p for n, p in model.named_parameters() if n.startswith(head + ".")]
    assert fresh and all(not p.is_meta and torch.isfinite(p).all() for p in fresh)
    assert any(p.abs().sum() > 0 for p in fresh)


def test_a_build_with_real_parameters_is_initialised_as_transformers_initialises_it(family):
    from zoo_transformers.build import build_model

    config = electra(num_labels=3)
    torch.manual_seed(0)
    ours = build_model(task="text-classification", config=config.to_dict()).transformers_model
    torch.manual_seed(0)
    theirs = transformers.AutoModelForSequenceClassification.from_config(config)
    expected = theirs.state_dict()
    assert ours.state_dict().keys() == expected.keys()
    for name, tensor in ours.state_dict().items():
        assert torch.equal(tensor, expected[name]), name


def test_a_cached_repo_config_is_read_without_huggingface_hub_downloading(family, tmp_path, monkeypatch):
    import huggingface_hub

    from zoo_transformers.build import build_model

    cache = hub_cache(tmp_path, monkeypatch)
    serve(save(random_model("AutoModel", electra()), tmp_path / "repo"), cache, "acme/tiny-electra")

    def refuse(*args, **kwargs):
        raise AssertionError("hf_hub_download called for a file in the cache")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    model = build_model(task="feature-extraction", repo="acme/tiny-electra", pooling="cls")
    assert model.transformers_model.config.hidden_size == 32
    with pytest.raises(family.WeightsError, match="hf_hub_download called"):  # one not in the cache goes that way
        build_model(task="feature-extraction", repo="acme/not-cached")
