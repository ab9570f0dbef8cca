"""Shared fixtures: a clean registry per test, and real (dummy) plugin distributions on sys.path."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo
from zoo.registry import reset_default_registry

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_PLUGIN = REPO / "plugins" / "example_plugin"

# Tests never reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Each test discovers plugins afresh, with zoo's switches unset unless the test sets them."""
    for name in ("ZOO_PLUGINS_AUTOLOAD", "ZOO_PLUGINS_ALLOW", "ZOO_PLUGINS_BLOCK", "ZOO_PLUGINS_STRICT"):
        monkeypatch.delenv(name, raising=False)
    reset_default_registry()
    yield
    reset_default_registry()


def write_distribution(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str],
                       version: str = "1.0") -> Path:
    """Write an installed distribution (a .dist-info with entry_points.txt, plus its modules) under root."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = ["[zoo.plugins]"] + [f"{name} = {value}" for name, value in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for rel, source in modules.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    return root


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A fresh site directory on sys.path; returns a function that installs a dummy distribution in it."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    imported_before = set(sys.modules)

    def install(dist: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.0") -> Path:
        write_distribution(root, dist, entry_points, modules, version)
        return root

    yield install
    for name in set(sys.modules) - imported_before:
        module = sys.modules.get(name)
        if module is not None and str(getattr(module, "__file__", "") or "").startswith(str(root)):
            del sys.modules[name]


@pytest.fixture(scope="session")
def example_plugin_site(tmp_path_factory) -> Path:
    """The example third-party plugin (acme-zoo) installed with pip into a temporary target, offline."""
    target = tmp_path_factory.mktemp("acme_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(target), str(EXAMPLE_PLUGIN)],
        check=True, capture_output=True, text=True,
    )
    return target


@pytest.fixture
def acme(example_plugin_site, monkeypatch):
    """The example plugin importable and discoverable in this process."""
    monkeypatch.syspath_prepend(str(example_plugin_site))
    reset_default_registry()
    yield zoo
    for name in [n for n in sys.modules if n == "acme_zoo" or n.startswith("acme_zoo.")]:
        del sys.modules[name]


def run_python(code: str, *, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (for import-time and environment-switch checks)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def drafts(monkeypatch):
    """The reduction of each JPEG decoded (1: whole), recorded as PIL's draft is asked for it."""
    from PIL import JpegImagePlugin  # only the image tests need PIL

    seen: list[int] = []
    original = JpegImagePlugin.JpegImageFile.draft

    def draft(self, mode, size):
        result = original(self, mode, size)
        seen.append(self.decoderconfig[0] if result else 1)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", draft)
    return seen
