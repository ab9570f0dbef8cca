"""The run report: plots and report.html in the run folder after a run, and ``zoo report`` rebuilding them."""
from __future__ import annotations

import json
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from zoo.cli import main
from zoo.finetune import fit

CLASSES = ["cat", "dog", "fox"]


class _Page(HTMLParser):
    """The images, the per-class table's rows and the misclassified samples' rows of a report page."""

    def __init__(self):
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
            if self._cell is not None:
                self._cell.append("[img]")
        elif tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag == "td" and self._table:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


class _Pictures(torch.utils.data.Dataset):
    """Image files in class folders, read as tensors, as zoo's folder readers keep them (``samples``)."""

    def __init__(self, root: Path, count: int, seed: int):
        generator = torch.Generator().manual_seed(seed)
        self.classes = CLASSES
        self.samples, self.tensors = [], []
        for index in range(count):
            label = index % 3
            pixels = torch.rand(3, 8, 8, generator=generator) * 0.5
            pixels[label] += 0.08  # a weak signal: some validation samples stay misclassified
            path = root / CLASSES[label] / f"{index}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray((pixels.permute(1, 2, 0) * 255).byte().numpy()).save(path)
            self.samples.append((path, label))
            self.tensors.append(pixels)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        return self.tensors[index], self.samples[index][1]


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    train, val = _Pictures(root / "train", 48, 0), _Pictures(root / "val", 30, 1)
    result = fit(_model(), train, val, epochs=2, lr=0.05, batch_size=8, checkpoint_dir=root / "out", progress=False,
                 verbose=False)
    return root / "out", result


def test_a_finished_run_leaves_plots_and_a_self_contained_report(finished_run):
    folder, result = finished_run
    report = folder / "report"
    for name in ("loss.png", "accuracy.png", "macro_f1.png", "confusion.png"):
        with Image.open(report / name) as image:
            assert image.size[0] >= 300 and image.size[1] >= 300, name
        assert (report / name).stat().st_size > 5000, name
    page = _Page()
    page.feed((report / "report.html").read_text())
    embedded = [img["src"] for img in page.images if img.get("alt") in ("loss", "accuracy", "confusion")]
    assert len(embedded) == 3 and all(src.startswith("data:image/png;base64,") for src in embedded)
    assert not any(img["src"].startswith(("http", "file", "/")) for img in page.images)  # nothing outside the page


def test_per_class_table_equals_the_saved_models_confusion_matrix(finished_run):
    folder, result = finished_run
    confusion = result.best["val_confusion"]
    page = _Page()
    page.feed((folder / "report" / "report.html").read_text())
    rows = page.tables["per-class"][1:]  # after the header row
    assert [row[0] for row in rows] == CLASSES
    for i, row in enumerate(rows):
        support, predicted, correct = (int(v) for v in row[1:4])
        assert support == sum(confusion[i])
        assert predicted == sum(r[i] for r in confusion)
        assert correct == confusion[i][i]
        recall = correct / support if support else 0.0
        assert float(row[5]) == pytest.approx(recall, abs=1e-4)


def test_misclassified_samples_show_thumbnails_with_predicted_and_true_classes(finished_run):
    folder, result = finished_run
    confusion = result.best["val_confusion"]
    wrong = sum(map(sum, confusion)) - sum(confusion[i][i] for i in range(3))
    samples = json.loads((folder / "report" / "samples.json").read_text())
    assert len(samples) == min(wrong, 16) > 0
    page = _Page()
    page.feed((folder / "report" / "report.html").read_text())
    rows = page.tables["errors"][1:]
    assert len(rows) == len(samples)
    for row, sample in zip(rows, samples):
        assert row[0].startswith("[img]") and sample["name"] in row[0]
        assert row[1] == sample["predicted"] != sample["true"] == row[2]
        assert sample["true"] == CLASSES[int(sample["name"].removesuffix(".png")) % 3]  # file i is of class i % 3


def test_zoo_report_rebuilds_the_page_and_says_where_it_is(finished_run, capsys):
    folder, _ = finished_run
    page = folder / "report" / "report.html"
    before = page.read_text()
    page.unlink()
    (folder / "report" / "loss.png").unlink()
    assert main(["report", str(folder)]) == 0
    assert page.read_text() == before
    assert str(page) in capsys.readouterr().out
    assert (folder / "report" / "loss.png").is_file()


def test_zoo_report_on_a_folder_without_a_run_explains(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no finished run" in capsys.readouterr().err


def test_importing_zoo_and_listing_do_not_import_matplotlib():
    code = "import sys, zoo; zoo.list_models(); import zoo.finetune.report; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr
