"""Weight sources: local files, URLs (loopback HTTP server, resumable), and a Hugging Face cache offline."""
from __future__ import annotations

import http.server
import threading

import pytest
import torch
from weights_models import fill_hf_cache, install, isolate_caches, net_card, save_net, sha256

import zoo
from zoo.weights import cached_path, fetch, is_cached


@pytest.fixture
def caches(monkeypatch, tmp_path):
    return isolate_caches(monkeypatch, tmp_path)


class _Server:
    """Serves bytes at /<name>, honouring Range requests; records the Range headers it saw."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.ranges: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                data = server.files.get(self.path.lstrip("/"))
                server.ranges.append(self.headers.get("Range"))
                if data is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                self.wfile.write(data[start:])

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _loads_equal(model, net):
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    assert torch.equal(model(x), net(x))


# ---------------------------------------------------------------------------- local files


def test_local_file_verified_and_loaded(caches, tmp_path, monkeypatch):
    path = tmp_path / "w" / "net.safetensors"
    net, digest = save_net(path)
    install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=str(path), sha256=digest, num_classes=10)},
                                  default="a"))
    assert is_cached(zoo.get_card("tnet"), "a")
    assert fetch(zoo.get_card("tnet"), "a") == path
    model = zoo.create("tnet", pretrained=True)
    _loads_equal(model, net)
    assert model.zoo_card.extra["weights_location"] == str(path)


def test_local_file_hash_mismatch_names_file_and_hash_and_keeps_user_file(caches, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    save_net(path)
    wrong = "ab" * 32
    install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=str(path), sha256=wrong)}, default="a"))
    with pytest.raises(zoo.WeightsError) as info:
        zoo.create("tnet", pretrained=True)
    assert str(path) in str(info.value) and wrong in str(info.value)
    assert path.exists()  # a user's own file is never deleted


def test_torchvision_style_hash_prefix_in_file_name(caches, tmp_path, monkeypatch):
    good = tmp_path / "good.pth"
    save_net(good)
    prefix = sha256(good)[:8]
    named = tmp_path / f"net-{prefix}.pth"
    good.rename(named)
    bad = tmp_path / "net-00000000.pth"
    save_net(bad)
    install(monkeypatch, net_card(weights={"ok": zoo.WeightsCard(source=str(named)),
                                           "bad": zoo.WeightsCard(source=str(bad))}, default="ok"))
    assert fetch(zoo.get_card("tnet"), "ok") == named
    with pytest.raises(zoo.WeightsError, match="00000000"):
        fetch(zoo.get_card("tnet"), "bad")


def test_truncated_file_is_reported(caches, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    save_net(path)
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=str(path), file_size=size),
                                           "b": zoo.WeightsCard(source=str(path))}, default="a"))
    with pytest.raises(zoo.WeightsError, match="truncated"):
        zoo.create("tnet", pretrained=True)
    with pytest.raises(zoo.WeightsError, match="truncated or corrupt"):  # no size or hash: the reader says so
        zoo.create("tnet.b", pretrained=True)


def test_verified_file_is_rehashed_after_it_changes(caches, tmp_path, monkeypatch):
    path = tmp_path / "net.safetensors"
    _, digest = save_net(path)
    install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=str(path), sha256=digest)}, default="a"))
    fetch(zoo.get_card("tnet"), "a")
    save_net(path, seed=1)  # same size, other bytes
    with pytest.raises(zoo.WeightsError, match="expected"):
        fetch(zoo.get_card("tnet"), "a")


# ---------------------------------------------------------------------------- URLs


def test_url_download_into_torch_hub_cache_then_offline(caches, tmp_path, monkeypatch):
    src = tmp_path / "src" / "net.safetensors"
    net, digest = save_net(src)
    with _Server({"net.safetensors": src.read_bytes()}) as server:
        install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=server.url("net.safetensors"),
                                                                    sha256=digest, num_classes=10)}, default="a"))
        card = zoo.get_card("tnet")
        assert not is_cached(card, "a")
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        with pytest.raises(zoo.WeightsError, match="offline"):
            monkeypatch.setenv("ZOO_OFFLINE", "1")
            fetch(card, "a")
        monkeypatch.delenv("ZOO_OFFLINE")
        path = fetch(card, "a", progress=False)
        assert path == caches["torch"] / "hub" / "checkpoints" / "net.safetensors"
        assert sha256(path) == digest and not path.with_name("net.safetensors.partial").exists()
    # the server is gone: the cached copy serves, offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cached_path(card, "a") == path
    _loads_equal(zoo.create("tnet", pretrained=True), net)


def test_url_download_resumes_from_partial_file(caches, tmp_path, monkeypatch):
    src = tmp_path / "src" / "net.pth"
    _, digest = save_net(src)
    data = src.read_bytes()
    dest = caches["torch"] / "hub" / "checkpoints" / "net.pth"
    dest.parent.mkdir(parents=True)
    dest.with_name("net.pth.partial").write_bytes(data[:1000])
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with _Server({"net.pth": data}) as server:
        install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=server.url("net.pth"), sha256=digest)},
                                      default="a"))
        path = fetch(zoo.get_card("tnet"), "a", progress=False)
    assert server.ranges == ["bytes=1000-"]
    assert path.read_bytes() == data


def test_url_hash_mismatch_removes_cached_file_and_retry_downloads(caches, tmp_path, monkeypatch):
    src = tmp_path / "src" / "net.safetensors"
    _, digest = save_net(src)
    good = src.read_bytes()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with _Server({"net.safetensors": good[:-10] + b"0123456789"}) as server:
        install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=server.url("net.safetensors"),
                                                                    sha256=digest)}, default="a"))
        card = zoo.get_card("tnet")
        with pytest.raises(zoo.WeightsError) as info:
            fetch(card, "a", progress=False)
        assert digest in str(info.value) and "net.safetensors" in str(info.value)
        assert not is_cached(card, "a")
        server.files["net.safetensors"] = good  # fixed upstream: the retry downloads again
        assert sha256(fetch(card, "a", progress=False)) == digest
        assert len(server.ranges) == 2


def test_url_http_error_is_clear(caches, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    with _Server({}) as server:
        install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=server.url("nope.pth"))}, default="a"))
        with pytest.raises(zoo.WeightsError, match="404"):
            fetch(zoo.get_card("tnet"), "a", progress=False)


# ---------------------------------------------------------------------------- Hugging Face Hub (local cache, offline)


def test_hf_hub_source_from_local_cache_offline(caches, tmp_path, monkeypatch):
    src = tmp_path / "src" / "weights.safetensors"
    net, digest = save_net(src)
    snapshot = fill_hf_cache(caches["hf"], "acme/tnet", {"weights.safetensors": src.read_bytes(),
                                                         "tokenizer.json": b"{}"})
    install(monkeypatch, net_card(weights={
        "hub": zoo.WeightsCard(source="hf-hub:acme/tnet", filename="weights.safetensors", sha256=digest,
                               num_classes=10),
        "missing": zoo.WeightsCard(source="hf-hub:acme/other"),
    }, default="hub"))
    card = zoo.get_card("tnet")
    assert is_cached(card, "hub") and not is_cached(card, "missing")
    model = zoo.create("tnet", pretrained=True)
    _loads_equal(model, net)
    assert model.zoo_card.extra["weights_location"] == str(snapshot)
    with pytest.raises(zoo.WeightsError, match="HF_HUB_OFFLINE"):
        zoo.create("tnet.missing", pretrained=True)


def test_hf_hub_hash_mismatch_removes_blob(caches, tmp_path, monkeypatch):
    src = tmp_path / "src" / "model.safetensors"
    save_net(src)
    snapshot = fill_hf_cache(caches["hf"], "acme/tnet", {"model.safetensors": src.read_bytes()})
    blob = (snapshot / "model.safetensors").resolve()
    install(monkeypatch, net_card(weights={"hub": zoo.WeightsCard(source="hf-hub:acme/tnet", sha256="cd" * 32)},
                                  default="hub"))
    with pytest.raises(zoo.WeightsError, match="removed"):
        zoo.create("tnet", pretrained=True)
    assert not blob.exists() and not (snapshot / "model.safetensors").exists()
    assert not is_cached(zoo.get_card("tnet"), "hub")


def test_hf_hub_file_is_checked_against_the_hubs_own_hash_when_the_card_has_none(caches, tmp_path, monkeypatch):
    src = tmp_path / "src" / "model.safetensors"
    net, _ = save_net(src)
    snapshot = fill_hf_cache(caches["hf"], "acme/tnet", {"model.safetensors": src.read_bytes()})
    install(monkeypatch, net_card(weights={"hub": zoo.WeightsCard(source="hf-hub:acme/tnet", num_classes=10)},
                                  default="hub"))
    _loads_equal(zoo.create("tnet", pretrained=True), net)  # blob name == content sha256: accepted
    blob = (snapshot / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF  # corrupted on disk after download
    blob.write_bytes(bytes(data))
    with pytest.raises(zoo.WeightsError, match=blob.name):
        zoo.create("tnet", pretrained=True)
    assert not blob.exists()


def test_hf_hub_revision_is_used(caches, tmp_path, monkeypatch):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    net_a, _ = save_net(a, seed=1)
    net_b, _ = save_net(b, seed=2)
    fill_hf_cache(caches["hf"], "acme/tnet", {"model.safetensors": a.read_bytes()}, commit="a" * 40)
    fill_hf_cache(caches["hf"], "acme/tnet", {"model.safetensors": b.read_bytes()}, revision="v2", commit="b" * 40)
    install(monkeypatch, net_card(weights={
        "main": zoo.WeightsCard(source="hf-hub:acme/tnet", num_classes=10),
        "v2": zoo.WeightsCard(source="hf-hub:acme/tnet", revision="v2", num_classes=10),
    }, default="main"))
    _loads_equal(zoo.create("tnet", pretrained=True), net_a)
    _loads_equal(zoo.create("tnet.v2", pretrained=True), net_b)


def test_pth_weights_load_with_only_torch_and_torchvision(tmp_path):
    """torch.hub users may have neither safetensors, huggingface_hub nor tqdm installed."""
    from pathlib import Path

    from conftest import run_python

    path = tmp_path / "net-weights.pth"
    _, digest = save_net(path)
    tests = str(Path(__file__).resolve().parent)
    result = run_python(f"""
        import sys
        for name in ("safetensors", "huggingface_hub", "tqdm"):
            sys.modules[name] = None  # importing any of them now raises ImportError
        sys.path.insert(0, {tests!r})
        import torch, zoo, zoo.registry
        from weights_models import net_card
        registry = zoo.Registry()
        registry.register(net_card(weights={{"a": zoo.WeightsCard(source={str(path)!r}, sha256={digest!r},
                                                                  num_classes=10)}}, default="a"))
        zoo.registry._default = registry
        model = zoo.create("tnet", pretrained=True, num_classes=3)
        print(tuple(model(torch.randn(2, 3, 32, 32)).shape))
    """, env={"ZOO_CACHE": str(tmp_path / "zoo")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "(2, 3)"
