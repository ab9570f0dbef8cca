import pytest
import torch
from finetune_models import conv_net

import zoo
from zoo.finetune import freeze, reset_head
from zoo.finetune.feature_cache import cache_key, cached_features, fingerprint

G = torch.Generator().manual_seed(0)
IMAGES = torch.randn(20, 3, 16, 16, generator=G)
LABELS = torch.randint(0, 5, (20,), generator=G)


def batches(images=IMAGES, labels=LABELS, size=8):
    return [(images[i:i + size], labels[i:i + size]) for i in range(0, len(images), size)]


class Exploding:
    def __iter__(self):
        raise AssertionError("the data was read although the features were cached")


def test_features_are_computed_once_then_read_from_disk(tmp_path):
    model = conv_net()
    freeze(model, "backbone")
    first = cached_features(model, batches(), data="set-a", preprocessing="none", cache_dir=tmp_path)
    assert not first.hit and first.path.exists() and first.path.parent == tmp_path
    second = cached_features(model, Exploding(), data="set-a", preprocessing="none", cache_dir=tmp_path)
    assert second.hit
    assert torch.equal(first.features, second.features) and torch.equal(second.labels, LABELS)
    model.eval()
    with torch.no_grad():
        assert torch.equal(second.features, model.pool(model.stages(model.stem(IMAGES))))
        # what the head reads: the head alone on cached features is the whole model
        assert torch.allclose(model.head(second.features), model(IMAGES), atol=1e-6)
    assert list(tmp_path.glob("*.tmp")) == []


def test_cached_features_can_train_a_head(tmp_path):
    model = conv_net()
    for _ in range(2):  # computed, then read back
        result = cached_features(model, batches(), data="x", cache_dir=tmp_path)
        head = model.head.train()
        head.zero_grad()
        torch.nn.functional.cross_entropy(head(result.features), result.labels).backward()  # no inference tensors
        assert head[1].weight.grad is not None


def test_key_changes_with_weights_preprocessing_and_data_but_not_the_head():
    model = conv_net()
    base = cache_key(model, data="a", preprocessing="p")
    assert cache_key(model, data="b", preprocessing="p") != base
    assert cache_key(model, data="a", preprocessing="q") != base
    reset_head(model, 3)
    assert cache_key(model, data="a", preprocessing="p") == base  # a new head reads the same features
    with torch.no_grad():
        model.stem[0].weight[0, 0, 0, 0] += 1e-3
    assert cache_key(model, data="a", preprocessing="p") != base
    model.stem[1].running_mean += 1  # BatchNorm statistics are part of the backbone
    assert len({base, cache_key(model, data="a", preprocessing="p")}) == 2
    assert cache_key(conv_net(seed=1), data="a", preprocessing="p") != base


def test_fingerprint_of_files_transforms_and_tensors(tmp_path):
    import torchvision.transforms as T

    file = tmp_path / "img.bin"
    file.write_bytes(b"1234")
    before = fingerprint([file])
    assert fingerprint([file]) == before
    file.write_bytes(b"12345")
    assert fingerprint([file]) != before
    assert (fingerprint(T.Compose([T.Resize(32), T.CenterCrop(28)]))
            == fingerprint(T.Compose([T.Resize(32), T.CenterCrop(28)])))
    assert fingerprint(T.Resize(32)) != fingerprint(T.Resize(36))
    assert fingerprint(torch.ones(3)) != fingerprint(torch.zeros(3))
    assert fingerprint(zoo.ImageInput(size=16)) != fingerprint(zoo.ImageInput(size=32))


def test_default_directory_and_a_damaged_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_CACHE", str(tmp_path))
    model = conv_net()
    first = cached_features(model, batches(), data="d")
    assert first.path.parent == tmp_path / "features"
    first.path.write_bytes(b"garbage")
    again = cached_features(model, batches(), data="d")
    assert not again.hit and torch.equal(again.features, first.features)
    unlabelled = cached_features(model, [IMAGES[:4]], data="u", with_labels=False)
    assert unlabelled.labels is None and unlabelled.features.shape == (4, 16)


def test_dict_inputs_and_errors(tmp_path):
    from finetune_models import encoder

    model = encoder()
    ids = torch.randint(0, 50, (6, 5))
    result = cached_features(model, [({"ids": ids}, torch.zeros(6))], data="t", cache_dir=tmp_path)
    assert result.features.shape == (6, 16)
    with pytest.raises(zoo.ZooError, match="empty"):
        cached_features(model, [], data="empty", cache_dir=tmp_path)
