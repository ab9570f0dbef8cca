"""The record of hashed weight files: a file is hashed once, not at every creation, and never trusted once changed.

Every file here is aged past `verify.SETTLED_NS` (shortened to 20 ms) before its first check, as a file
downloaded some time ago is, so that a later write always shows in its change time.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest
import torch
from weights_models import fill_hf_cache, install, isolate_caches, net_card, save_net

import zoo
from zoo.weights import verify

SETTLED_NS = 20_000_000


@pytest.fixture
def caches(monkeypatch, tmp_path):
    monkeypatch.setattr(verify, "SETTLED_NS", SETTLED_NS)
    return isolate_caches(monkeypatch, tmp_path)


@pytest.fixture
def hashes(monkeypatch):
    """The files hashed, in order (each full read of a weights file)."""
    seen: list[str] = []
    original = verify.sha256_of

    def counting(path):
        seen.append(os.path.realpath(path))
        return original(path)

    monkeypatch.setattr(verify, "sha256_of", counting)
    return seen


def _settle() -> None:
    time.sleep(3 * SETTLED_NS / 1e9)


def _rewrite_same_size_and_mtime(path, data: bytes) -> None:
    """Put other bytes of the same length in place, then set the modification time back as it was."""
    before = os.stat(path)
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def _local_card(monkeypatch, path, digest):
    install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=str(path), sha256=digest, num_classes=10)},
                                  default="a"))


def test_an_unchanged_file_is_hashed_once_over_many_creations(caches, hashes, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    net, digest = save_net(path)
    _local_card(monkeypatch, path, digest)
    _settle()
    x = torch.randn(2, 3, 32, 32)
    for _ in range(3):
        model = zoo.create("tnet", pretrained=True).eval()
        assert torch.equal(model(x), net(x))
    assert hashes == [str(path)]


def test_a_file_rewritten_with_its_size_and_mtime_kept_is_hashed_again_and_refused(caches, hashes, tmp_path,
                                                                                   monkeypatch):
    path = tmp_path / "net.safetensors"
    _, digest = save_net(path)
    _local_card(monkeypatch, path, digest)
    _settle()
    zoo.create("tnet", pretrained=True)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    _rewrite_same_size_and_mtime(path, bytes(data))
    with pytest.raises(zoo.WeightsError, match=f"has sha256 .* expected {digest}"):
        zoo.create("tnet", pretrained=True)
    assert hashes == [str(path), str(path)]


def test_another_file_moved_into_place_with_the_same_size_and_mtime_is_hashed_again(caches, hashes, tmp_path,
                                                                                     monkeypatch):
    path, other = tmp_path / "net.safetensors", tmp_path / "other.safetensors"
    _, digest = save_net(path)
    save_net(other, seed=1)
    assert other.stat().st_size == path.stat().st_size
    _local_card(monkeypatch, path, digest)
    _settle()
    zoo.create("tnet", pretrained=True)
    os.utime(other, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns))
    os.replace(other, path)
    with pytest.raises(zoo.WeightsError, match="expected"):
        zoo.create("tnet", pretrained=True)
    assert len(hashes) == 2


def test_a_record_is_never_used_for_another_file(caches, hashes, tmp_path):
    good, bad = tmp_path / "good.bin", tmp_path / "bad.bin"
    good.write_bytes(b"good weights")
    bad.write_bytes(b"evil weights")
    _settle()
    digest = verify.file_sha256(good)
    shutil.copyfile(verify._stamp_path(good), verify._stamp_path(bad))  # good's record where bad's would be
    verify.check_file(good, sha256=digest)
    with pytest.raises(zoo.WeightsError, match="expected"):
        verify.check_file(bad, sha256=digest)
    assert hashes == [str(good), str(bad)]


@pytest.mark.parametrize("record", ["", "{", "[]", '{"sha256": null}', "\x00\xff"])
def test_a_corrupted_record_is_ignored(caches, hashes, tmp_path, record):
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    _settle()
    digest = verify.file_sha256(path)
    verify._stamp_path(path).write_text(record, encoding="latin-1")
    verify.check_file(path, sha256=digest)
    with pytest.raises(zoo.WeightsError, match="expected"):
        verify.check_file(path, sha256="0" * 64)
    assert hashes == [str(path)] * 2  # hashed again once, then the new record served


def test_a_file_changed_just_before_it_was_hashed_is_not_recorded(caches, hashes, tmp_path, monkeypatch):
    monkeypatch.setattr(verify, "SETTLED_NS", 60_000_000_000)  # everything here is "just written"
    path = tmp_path / "w.bin"
    path.write_bytes(b"weights")
    digest = verify.file_sha256(path)
    verify.check_file(path, sha256=digest)
    assert hashes == [str(path)] * 2 and not verify._stamp_path(path).exists()


def test_a_hub_blob_is_hashed_once_and_a_rewritten_one_is_refused_and_removed(caches, hashes, tmp_path,
                                                                              monkeypatch):
    src = tmp_path / "src" / "model.safetensors"
    save_net(src)
    snapshot = fill_hf_cache(caches["hf"], "acme/tnet", {"model.safetensors": src.read_bytes()})
    install(monkeypatch, net_card(weights={"hub": zoo.WeightsCard(source="hf-hub:acme/tnet", num_classes=10)},
                                  default="hub"))
    blob = (snapshot / "model.safetensors").resolve()
    _settle()
    zoo.create("tnet", pretrained=True)
    zoo.create("tnet", pretrained=True)
    assert hashes == [str(blob)]  # checked against its name (the Hub's sha256) once
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01
    _rewrite_same_size_and_mtime(blob, bytes(data))
    with pytest.raises(zoo.WeightsError, match="removed"):
        zoo.create("tnet", pretrained=True)
    assert not blob.exists() and len(hashes) == 2
