"""Downloads that several processes share, servers cut off at the expected size, and Hub names refused early.

Every server here listens on 127.0.0.1 and every wait is bounded; nothing reaches the network.
"""
from __future__ import annotations

import fcntl
import hashlib
import http.server
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from test_weights_sources import _Server as _FileServer
from weights_models import fill_hf_cache, install, isolate_caches, net_card

import zoo
from zoo.weights import fetch, is_cached, sources

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()
BOUND = 128 << 20  # the most a misbehaving test server ever sends


@pytest.fixture
def caches(monkeypatch, tmp_path):
    dirs = isolate_caches(monkeypatch, tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    return dirs


class _Server(_FileServer):
    """A loopback HTTP server whose every GET is answered by `respond(handler, server)`; records the GETs' Range
    headers and counts the bytes sent."""

    def __init__(self, respond):
        self.ranges: list[str | None] = []
        self.sent = 0
        self.done = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                server.ranges.append(self.headers.get("Range"))
                try:
                    respond(self, server)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client hung up: what a cut-off looks like from here
                finally:
                    server.done.set()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def write(self, handler, data: bytes) -> None:
        handler.wfile.write(data)
        self.sent += len(data)


def _slowly(handler, server):
    """The whole of DATA with its Content-Length, in 20 pieces over about half a second."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(DATA)))
    handler.end_headers()
    step = len(DATA) // 20
    for i in range(0, len(DATA), step):
        server.write(handler, DATA[i:i + step])
        handler.wfile.flush()
        time.sleep(0.025)


def _endless(handler, server):
    """No Content-Length and no end (up to BOUND): a body that runs until the client hangs up."""
    handler.send_response(200)
    handler.end_headers()
    while server.sent < BOUND:
        server.write(handler, DATA[:65536])


def _announcing_too_much(handler, server):
    handler.send_response(200)
    handler.send_header("Content-Length", str(BOUND))
    handler.end_headers()
    while server.sent < BOUND:
        server.write(handler, DATA[:65536])


def _chunked_past_its_length(handler, server):
    """Says Content-Length 1000, then sends a chunked body far longer (HTTP clients go by the chunks)."""
    handler.protocol_version = "HTTP/1.1"
    handler.send_response(200)
    handler.send_header("Content-Length", "1000")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.send_header("Connection", "close")
    handler.end_headers()
    while server.sent < BOUND:
        server.write(handler, b"10000\r\n" + DATA[:65536] + b"\r\n")


def _card(monkeypatch, url: str, **weights) -> zoo.ModelCard:
    install(monkeypatch, net_card(weights={"a": zoo.WeightsCard(source=url, **weights)}, default="a"))
    return zoo.get_card("tnet")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.partial"))


# ---------------------------------------------------------------------------- two downloads of one file

_CHILD = """
    import sys, time
    from pathlib import Path
    import zoo, zoo.registry
    from zoo.weights import fetch

    url, digest, size, ready, go = sys.argv[1:]
    registry = zoo.Registry()
    registry.register(zoo.ModelCard(
        name="tnet", builder="weights_models:build_net", task="image-classification", modality="image",
        weights={"a": zoo.WeightsCard(source=url, sha256=digest, file_size=int(size))}, default_weights="a"))
    zoo.registry._default = registry
    Path(ready).touch()
    deadline = time.monotonic() + 30
    while not Path(go).exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    print(fetch(zoo.get_card("tnet"), "a", progress=False))
"""


def test_two_processes_downloading_one_url_at_once_both_get_the_one_verified_file(caches, tmp_path):
    env = {**os.environ, "TORCH_HOME": str(caches["torch"]), "ZOO_CACHE": str(caches["zoo"]), "HF_HUB_OFFLINE": "0"}
    env.pop("ZOO_OFFLINE", None)
    go = tmp_path / "go"
    with _Server(_slowly) as server:
        children = []
        for i in range(2):
            args = [server.url("net.bin"), DIGEST, str(len(DATA)), str(tmp_path / f"ready{i}"), str(go)]
            children.append(subprocess.Popen([sys.executable, "-c", textwrap.dedent(_CHILD), *args], env=env,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        try:
            deadline = time.monotonic() + 30
            while not all((tmp_path / f"ready{i}").exists() for i in range(2)) and time.monotonic() < deadline:
                time.sleep(0.005)
            go.touch()  # both start fetching at the same moment
            results = [child.communicate(timeout=60) for child in children]
        finally:
            for child in children:
                child.kill()
    for child, (_out, err) in zip(children, results):
        assert child.returncode == 0, err[-2000:]
    folder = caches["torch"] / "hub" / "checkpoints"
    assert {out.strip() for out, _ in results} == {str(folder / "net.bin")}
    assert hashlib.sha256((folder / "net.bin").read_bytes()).hexdigest() == DIGEST
    assert len(server.ranges) == 1  # the second process waited and found the file, rather than downloading it again
    assert _leftovers(folder) == []


def test_without_file_locks_each_download_writes_its_own_partial_file(caches, monkeypatch):
    monkeypatch.setattr(sources, "fcntl", None)  # as on Windows or a file system without locks
    with _Server(_slowly) as server:
        card = _card(monkeypatch, server.url("net.bin"), sha256=DIGEST, file_size=len(DATA))
        start = threading.Barrier(2)
        results: list[object] = []

        def download():
            start.wait(timeout=10)
            try:
                results.append(fetch(card, "a", progress=False))
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                results.append(exc)

        threads = [threading.Thread(target=download) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    folder = caches["torch"] / "hub" / "checkpoints"
    assert results == [folder / "net.bin"] * 2
    assert len(server.ranges) == 2
    assert hashlib.sha256((folder / "net.bin").read_bytes()).hexdigest() == DIGEST
    assert _leftovers(folder) == []


def test_waiting_on_a_download_that_makes_no_progress_ends_in_a_clear_error(caches, monkeypatch):
    folder = caches["torch"] / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    holder = os.open(folder / "net.bin.lock", os.O_RDWR | os.O_CREAT)  # a stuck download elsewhere
    fcntl.flock(holder, fcntl.LOCK_EX)
    monkeypatch.setattr(sources, "LOCK_STALL_S", 0.3)
    try:
        with _Server(_slowly) as server:
            card = _card(monkeypatch, server.url("net.bin"), sha256=DIGEST)
            with pytest.raises(zoo.WeightsError, match="another process holds net.bin.lock") as info:
                fetch(card, "a", progress=False)
    finally:
        os.close(holder)
    assert "stop that process" in str(info.value)
    assert server.ranges == [] and not (folder / "net.bin").exists()


# ---------------------------------------------------------------------------- servers that send too much


@pytest.mark.parametrize("respond, card, limit", [
    (_endless, {"file_size": 1000}, "file_size"),
    (_announcing_too_much, {"file_size": 1000}, "file_size"),
    (_chunked_past_its_length, {}, "Content-Length"),
], ids=["no-length-endless", "announces-more-than-file-size", "chunked-past-content-length"])
def test_a_server_sending_more_than_expected_is_cut_off_and_its_partial_file_removed(respond, card, limit, caches,
                                                                                     monkeypatch):
    with _Server(respond) as server:
        with pytest.raises(zoo.WeightsError, match=f"cut off: the server sent more than .*{limit}"):
            fetch(_card(monkeypatch, server.url("net.bin"), **card), "a", progress=False)
        assert server.done.wait(10)
    assert server.sent < BOUND // 4  # stopped near the limit, not after everything the server had
    folder = caches["torch"] / "hub" / "checkpoints"
    assert not (folder / "net.bin").exists() and _leftovers(folder) == []


def _half_then_the_rest(handler, server):
    """The first GET gets half of DATA and a closed connection (no Content-Length); a Range GET gets the rest."""
    start = int(handler.headers["Range"].split("=")[1].rstrip("-")) if handler.headers.get("Range") else 0
    handler.send_response(206 if start else 200)
    handler.end_headers()
    server.write(handler, DATA[start:] if start else DATA[: len(DATA) // 2])


def test_a_download_the_server_cuts_short_never_gets_its_name_and_resumes_next_time(caches, monkeypatch):
    folder = caches["torch"] / "hub" / "checkpoints"
    with _Server(_half_then_the_rest) as server:
        card = _card(monkeypatch, server.url("net.bin"), file_size=len(DATA))  # no sha256: only the size tells
        with pytest.raises(zoo.WeightsError, match=f"stopped at {len(DATA) // 2} of {len(DATA)} bytes"):
            fetch(card, "a", progress=False)
        assert not (folder / "net.bin").exists() and _leftovers(folder) == ["net.bin.partial"]
        assert fetch(card, "a", progress=False).read_bytes() == DATA
    assert server.ranges == [None, f"bytes={len(DATA) // 2}-"]
    assert _leftovers(folder) == []


# ---------------------------------------------------------------------------- Hub names and the offline cache

BAD_HUB_NAMES = ["a/b/c", "../x", "org/re po", "org/" + "n" * 97, "n" * 97, "org/re--po", "org/repo.git", "-org/repo",
                 "org/näme", "org/", ""]
GOOD_HUB_NAMES = ["org/repo", "gpt2", "Foo-BAR_foo.bar123/x", "_a/b_", "o/" + "n" * 96]


@pytest.mark.parametrize("name", BAD_HUB_NAMES + GOOD_HUB_NAMES)
def test_hub_repo_ids_are_refused_exactly_when_the_hub_client_refuses_them(name):
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(name)
        client_refuses = False
    except HFValidationError:
        client_refuses = True
    assert client_refuses == (name in BAD_HUB_NAMES)
    if not client_refuses:
        sources.check_hub_repo_id(name)
        return
    with pytest.raises(zoo.WeightsError) as info:
        sources.check_hub_repo_id(name)
    assert "\n" not in str(info.value) and "'org/name' or 'name'" in str(info.value)


@pytest.fixture
def no_network(monkeypatch):
    """Records (and refuses) every attempt to open a socket connection."""
    attempts: list[object] = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.mark.parametrize("name", ["a/b/c", "../x", "org/re po", "org/" + "n" * 97])
def test_a_bad_hf_hub_name_is_a_one_line_weights_error_before_any_network_access(name, caches, monkeypatch,
                                                                                no_network):
    card = _card(monkeypatch, f"hf-hub:{name}@main")
    for attempt in (lambda: fetch(card, "a"), lambda: is_cached(card, "a")):
        with pytest.raises(zoo.WeightsError) as info:
            attempt()
        message = str(info.value)
        assert "\n" not in message and repr(name) in message and "'org/name' or 'name'" in message
    with pytest.raises(zoo.WeightsError) as info:  # a saved model's name
        zoo.create(f"hf-hub:{name}")
    assert "\n" not in str(info.value)
    assert no_network == []


def test_offline_a_hub_file_missing_from_a_cached_snapshot_names_the_cache_and_zoo_download(caches, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fill_hf_cache(caches["hf"], "acme/tnet", {"tokenizer.json": b"{}"})  # side files cached, weights not
    card = _card(monkeypatch, "hf-hub:acme/tnet")
    with pytest.raises(zoo.WeightsError) as info:
        fetch(card, "a")
    message = str(info.value)
    assert "\n" not in message and str(caches["hf"]) in message and "`zoo download tnet.a`" in message


def test_offline_the_error_names_the_default_hub_cache_itself(caches, monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.delenv("HF_HOME")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "default-hub-cache"))
    card = _card(monkeypatch, "hf-hub:acme/not-downloaded")
    with pytest.raises(zoo.WeightsError) as info:
        fetch(card, "a")
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "default-hub-cache") in message and "`zoo download tnet.a`" in message


@pytest.mark.parametrize("stamp", ["[]", '"text"', '{"sha256": 5}', "{"])
def test_a_damaged_verified_stamp_only_costs_a_rehash(tmp_path, caches, stamp):
    from zoo.weights import verify

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"weights")
    digest = hashlib.sha256(b"weights").hexdigest()
    verify.remember_verified(weights, digest)
    verify._stamp_path(weights).write_text(stamp)
    verify.check_file(weights, sha256=digest)  # hashes again instead of failing
    with pytest.raises(zoo.WeightsError, match="expected"):
        verify.check_file(weights, sha256="0" * 64)
