"""Offline and network errors: each names the cache, the `zoo download` command that fills it and `--scratch` where
that applies; `zoo download hf-hub:org/repo` works; a Hub that never answers costs seconds, not minutes.

Every server here listens on 127.0.0.1 and every wait is bounded; nothing reaches the network.
"""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from weights_models import fill_hf_cache, install, isolate_caches, net_card, save_net

import zoo
from zoo.cli import main

REPO = Path(__file__).resolve().parent.parent
BOUND_S = 5.0  # the most a Hub that does not answer may cost


@pytest.fixture
def caches(monkeypatch, tmp_path):
    return isolate_caches(monkeypatch, tmp_path)  # offline: HF_HUB_OFFLINE=1


def _hub_card(monkeypatch, tmp_path):
    """`tnet` with weights on the Hub (`tnet.hub`) and at a URL (`tnet.url`), neither downloaded."""
    install(monkeypatch, net_card(weights={
        "hub": zoo.WeightsCard(source="hf-hub:acme/tnet"),
        "url": zoo.WeightsCard(source="https://example.invalid/tnet-0123abcd.pth"),
    }, default="hub"))


@pytest.mark.parametrize(("tag", "cache"), [("hub", "hf"), ("url", "torch")])
def test_weights_not_cached_offline_name_the_cache_the_download_command_and_scratch(caches, monkeypatch, tmp_path,
                                                                                   tag, cache):
    _hub_card(monkeypatch, tmp_path)
    with pytest.raises(zoo.WeightsError) as info:
        zoo.create(f"tnet.{tag}", pretrained=True)
    message = str(info.value)
    assert "\n" not in message and str(caches[cache]) in message
    assert f"`zoo download tnet.{tag}`" in message
    assert "pretrained=False" in message and "`zoo finetune --scratch`" in message


def test_hub_repo_not_cached_offline_names_its_download_command_without_scratch(caches):
    with pytest.raises(zoo.WeightsError) as info:
        zoo.create("hf-hub:acme/saved-net@v2")
    message = str(info.value)
    assert str(caches["hf"]) in message and "`zoo download hf-hub:acme/saved-net@v2`" in message
    assert "scratch" not in message


def test_zoo_download_offline_says_what_stops_the_download_not_to_run_zoo_download(caches, capsys):
    assert main(["download", "bert_base_uncased"]) == 2
    err = capsys.readouterr().err
    assert "zoo download" not in err and "--scratch" not in err
    assert str(caches["hf"]) in err and "google-bert/bert-base-uncased" in err and "unset HF_HUB_OFFLINE" in err


def test_zoo_download_fetches_a_hub_repo_into_the_cache(caches, tmp_path, capsys):
    saved = tmp_path / "net.safetensors"
    save_net(saved)
    files = {"config.json": b'{"zoo": {}}', "model.safetensors": saved.read_bytes()}
    fill_hf_cache(caches["hf"], "acme/saved-net", files)
    assert main(["download", "hf-hub:acme/saved-net", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["name"] == "hf-hub:acme/saved-net" and Path(row["path"]).is_relative_to(caches["hf"])
    assert (Path(row["path"]) / "model.safetensors").read_bytes() == files["model.safetensors"]
    assert main(["download", "local-dir:/some/folder"]) == 2
    assert "nothing to download" in capsys.readouterr().err


# ---------------------------------------------------------------------------- a Hub on 127.0.0.1


class _FakeHub:
    """A Hub answering what `snapshot_download` asks for one repo (repo info, file tree, file HEAD/GET);
    with `answer=False` it accepts connections and never answers."""

    SHA = "a" * 40

    def __init__(self, files: dict[str, bytes] | None = None, *, answer: bool = True):
        self.files = files or {}
        self.requests: list[str] = []
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                hub._respond(self, body=True)

            def do_HEAD(self):  # noqa: N802
                hub._respond(self, body=False)

            def log_message(self, *args):
                pass

        if answer:
            self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
            self._server.daemon_threads = True
            self.port = self._server.server_address[1]
            target = self._server.serve_forever
        else:
            self._silent = socket.create_server(("127.0.0.1", 0))
            self.port = self._silent.getsockname()[1]
            self._held: list[socket.socket] = []
            target = self._hold_connections
        self._thread = threading.Thread(target=target, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _hold_connections(self) -> None:
        while True:
            try:
                self._held.append(self._silent.accept()[0])
            except OSError:  # closed
                return

    def _respond(self, handler, *, body: bool) -> None:
        path = handler.path.split("?")[0]
        self.requests.append(f"{handler.command} {path}")
        if path.startswith("/api/models/acme/net/tree/"):
            tree = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                    for name, data in self.files.items()]
            return self._send(handler, json.dumps(tree).encode(), body=body)
        if path.startswith("/api/models/acme/net"):
            info = {"id": "acme/net", "sha": self.SHA, "siblings": [{"rfilename": n} for n in self.files]}
            return self._send(handler, json.dumps(info).encode(), body=body)
        name = path.rpartition("/")[2]
        if path.startswith("/acme/net/resolve/") and name in self.files:
            data = self.files[name]
            return self._send(handler, data, body=body, headers={
                "X-Repo-Commit": self.SHA, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'})
        handler.send_response(404)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    @staticmethod
    def _send(handler, data: bytes, *, body: bool, headers: dict[str, str] | None = None) -> None:
        handler.send_response(200)
        for key, value in {"Content-Length": str(len(data)), **(headers or {})}.items():
            handler.send_header(key, value)
        handler.end_headers()
        if body:
            handler.wfile.write(data)

    def close(self) -> None:
        if hasattr(self, "_server"):
            self._server.shutdown()
            self._server.server_close()
        else:
            self._silent.close()
            for connection in self._held:
                connection.close()


@pytest.fixture
def hub_server():
    servers: list[_FakeHub] = []

    def start(files=None, *, answer=True) -> _FakeHub:
        servers.append(_FakeHub(files, answer=answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _online(tmp_path: Path, endpoint: str, code: str) -> subprocess.CompletedProcess:
    """Run `code` in a fresh interpreter online (HF_HUB_OFFLINE unset) against the Hub at `endpoint`."""
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "ZOO_OFFLINE")}
    env.update(HF_ENDPOINT=endpoint, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HOME=str(tmp_path / "hf"),
               ZOO_CACHE=str(tmp_path / "zoo"), HF_HUB_DISABLE_PROGRESS_BARS="1",
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)


def test_zoo_download_of_a_hub_repo_downloads_it_and_later_runs_find_it_offline(tmp_path, hub_server):
    files = {"config.json": b'{"zoo": {"format": 1}}', "model.safetensors": b"weights", "notes.bin": b"left out"}
    hub = hub_server(files)
    done = _online(tmp_path, hub.endpoint, """
        import json, sys
        from zoo.cli import main
        sys.exit(main(["download", "hf-hub:acme/net", "--json"]))
    """)
    assert done.returncode == 0, done.stderr
    folder = Path(json.loads(done.stdout)[0]["path"])
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert folder.is_relative_to(tmp_path / "hub") and (folder / "model.safetensors").read_bytes() == b"weights"
    assert any(request.startswith("GET /acme/net/resolve/") for request in hub.requests)


def test_a_hub_that_never_answers_costs_seconds_and_a_cached_file_is_still_used(tmp_path, hub_server):
    """The first access waits for the Hub at most `BOUND_S` seconds; the later ones know it does not answer."""
    silent = hub_server(answer=False)
    fill_hf_cache(tmp_path / "hub", "acme/cached", {"model.safetensors": b"cached weights"})
    done = _online(tmp_path, silent.endpoint, """
        import time
        import zoo
        from zoo.cli import main
        from zoo.data.text import load_tokenizer
        from zoo.weights import fetch

        card = zoo.ModelCard(name="tnet", builder="weights_models:build_net", task="image-classification",
                             modality="image", weights={"gone": zoo.WeightsCard(source="hf-hub:acme/gone"),
                                                        "cached": zoo.WeightsCard(source="hf-hub:acme/cached")})
        for attempt in (lambda: fetch(card, "gone"), lambda: fetch(card, "cached"),
                        lambda: zoo.create("hf-hub:acme/saved-net"), lambda: zoo.push_to_hub(None, "me/tnet"),
                        lambda: main(["download", "hf-hub:acme/x"]), lambda: load_tokenizer("hf-hub:acme/tok")):
            start = time.monotonic()
            try:
                print("result", attempt())
            except zoo.ZooError as exc:
                print("error", exc)
            print("seconds", time.monotonic() - start, flush=True)
    """)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    seconds = [float(line.split()[1]) for line in lines if line.startswith("seconds")]
    assert len(seconds) == 6 and max(seconds) < BOUND_S, done.stdout
    gone, cached, saved, push, download, tokenizer = (line for line in lines if line.startswith(("error", "result")))
    assert f"the Hub ({silent.endpoint}) could not be reached (no answer within" in gone
    assert "`zoo download tnet.gone`" in gone and str(tmp_path / "hub") in gone
    assert cached.startswith("result") and cached.endswith("model.safetensors")
    assert "`zoo download hf-hub:acme/saved-net`" in saved
    assert f"could not reach the Hub ({silent.endpoint}) to push me/tnet" in push
    assert download == "result 2"
    assert tokenizer.startswith("error hf-hub:acme/tok has no tokenizer.json") and "could not be reached" in tokenizer
    assert "check the network connection" in done.stderr and "zoo download" not in done.stderr


def test_hub_timeout_switch_is_checked(monkeypatch):
    from zoo.weights.sources import hub_timeout

    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "1.5")
    assert hub_timeout() == 1.5
    monkeypatch.setenv("ZOO_HUB_TIMEOUT", "soon")
    with pytest.raises(zoo.WeightsError, match="ZOO_HUB_TIMEOUT"):
        hub_timeout()

