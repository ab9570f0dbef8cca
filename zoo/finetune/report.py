"""A finished run's report: ``report/`` in its run folder, with the plots (`zoo.finetune.plots`),
``report.html`` (one self-contained page: plots embedded as base64 PNGs, the per-class table of the
saved model, a sample of misclassified validation inputs), and what rebuilds them (``run.json``:
the history, class names and best epoch; ``samples.json``: the misclassified inputs, described).

``zoo report OUT`` rebuilds the page and plots from those two files, without the data or torch.
"""
from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ZooError
from ..files import write_text_atomic
from . import plots

REPORT_FOLDER = "report"
REPORT_HTML = "report.html"
RUN_JSON = "run.json"
SAMPLES_JSON = "samples.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
THUMBNAIL = 96  # pixels, the longer side
SNIPPET = 200  # characters of a text sample


class ReportError(ZooError):
    """A report cannot be built: the folder holds no finished run's report data."""


# ---------------------------------------------------------------------------- misclassified samples


def describe_samples(dataset: Any, errors: Sequence[tuple[int, int, int]],
                     labels: Sequence[str] | None) -> list[dict[str, Any]]:
    """What the report shows of each misclassified sample: its class names and the input itself
    (a thumbnail for an image, a snippet for a text, the file name for audio or other files)."""
    described = []
    for index, predicted, true in errors:
        entry: dict[str, Any] = {"index": index, "predicted": _name(predicted, labels), "true": _name(true, labels)}
        entry.update(_describe_input(dataset, index))
        described.append(entry)
    return described


def _name(index: int, labels: Sequence[str] | None) -> str:
    return str(labels[index]) if labels is not None and 0 <= index < len(labels) else str(index)


def _describe_input(dataset: Any, index: int) -> dict[str, Any]:
    samples = getattr(dataset, "samples", None)
    if isinstance(samples, list) and index < len(samples) and isinstance(samples[index], tuple):
        path = Path(samples[index][0])
        if path.suffix.lower() in IMAGE_SUFFIXES:
            thumbnail = _thumbnail_of_file(path)
            if thumbnail is not None:
                return {"kind": "image", "name": path.name, "thumbnail": thumbnail}
        return {"kind": "file", "name": path.name}
    texts = getattr(dataset, "texts", None)
    if isinstance(texts, list) and index < len(texts):
        return {"kind": "text", "text": _snippet(str(texts[index]))}
    sentences = getattr(dataset, "sentences", None)
    if isinstance(sentences, list) and index < len(sentences):
        return {"kind": "text", "text": _snippet(" ".join(map(str, sentences[index])))}
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and tensors:
        thumbnail = _thumbnail_of_tensor(tensors[0][index])
        if thumbnail is not None:
            return {"kind": "image", "name": f"sample {index}", "thumbnail": thumbnail}
    return {"kind": "other", "name": f"sample {index}"}


def _snippet(text: str) -> str:
    return text if len(text) <= SNIPPET else text[:SNIPPET - 1] + "…"


def _thumbnail_of_file(path: Path) -> str | None:
    from PIL import Image  # a dependency, needed only for thumbnails

    try:
        with Image.open(path) as image:
            return _png_base64(image.convert("RGB"))
    except OSError:
        return None


def _thumbnail_of_tensor(tensor: Any) -> str | None:
    """An image tensor (channels, height, width; 1 or 3 channels) stretched to 0..255, else None."""
    from PIL import Image  # a dependency, needed only for thumbnails

    if getattr(tensor, "dim", lambda: 0)() != 3 or tensor.shape[0] not in (1, 3) or min(tensor.shape[1:]) < 4:
        return None
    values = tensor.detach().float().cpu()
    values = (values - values.min()) / (values.max() - values.min()).clamp(min=1e-12)
    pixels = (values * 255).round().byte().permute(1, 2, 0).numpy()
    return _png_base64(Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels))


def _png_base64(image: Any) -> str:
    image = image.copy()
    image.thumbnail((THUMBNAIL, THUMBNAIL))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_samples(folder: Path, samples: list[dict[str, Any]]) -> Path:
    """Keep the described misclassified samples of the saved model for the report."""
    (folder / REPORT_FOLDER).mkdir(parents=True, exist_ok=True)
    return write_text_atomic(folder / REPORT_FOLDER / SAMPLES_JSON, json.dumps(samples) + "\n")


# ---------------------------------------------------------------------------- the report


def write_report(folder: Path, history: Sequence[dict[str, Any]], labels: Sequence[str] | None,
                 best_epoch: int | None, monitor: str | None) -> Path:
    """Record the run in ``report/run.json`` and build its plots and ``report.html``; returns the page's path."""
    run = {"history": list(history), "labels": list(labels) if labels is not None else None,
           "best_epoch": best_epoch, "monitor": monitor}
    (folder / REPORT_FOLDER).mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / REPORT_FOLDER / RUN_JSON, json.dumps(run, default=str) + "\n")
    return rebuild(folder)


def rebuild(folder: Path) -> Path:
    """Build the plots and ``report.html`` of the run whose run folder is `folder` from its ``report/run.json``."""
    where = folder / REPORT_FOLDER
    try:
        run = json.loads((where / RUN_JSON).read_text())
    except FileNotFoundError:
        raise ReportError(f"{folder} holds no finished run's report data ({where / RUN_JSON}); a run writes it "
                          "when it finishes with a checkpoint folder (zoo finetune --out, or fit(checkpoint_dir=))"
                          ) from None
    except (OSError, ValueError) as exc:
        raise ReportError(f"cannot read {where / RUN_JSON}: {exc}") from exc
    samples_file = where / SAMPLES_JSON
    samples = json.loads(samples_file.read_text()) if samples_file.is_file() else []
    history, labels, best_epoch = run["history"], run.get("labels"), run.get("best_epoch")
    images = plots.plot_curves(history, where)
    best = next((m for m in history if m.get("epoch") == best_epoch), history[-1] if history else {})
    confusion = best.get("val_confusion", best.get("train_confusion"))
    if confusion is not None:
        images.append(plots.plot_confusion(confusion, labels, where / plots.CONFUSION_PLOT,
                                           title=f"confusion matrix, epoch {best.get('epoch')}"))
    page = render(run, best, confusion, samples, images)
    return write_text_atomic(where / REPORT_HTML, page)


def per_class_rows(confusion: Sequence[Sequence[int]], labels: Sequence[str] | None) -> list[dict[str, Any]]:
    """One row per class of the confusion matrix: its support, predictions, hits, precision, recall, F1."""
    rows = []
    for i, row in enumerate(confusion):
        support, predicted, correct = sum(row), sum(r[i] for r in confusion), row[i]
        precision = correct / predicted if predicted else 0.0
        recall = correct / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": _name(i, labels), "support": support, "predicted": predicted, "correct": correct,
                     "precision": precision, "recall": recall, "f1": f1})
    return rows


def render(run: dict[str, Any], best: dict[str, Any], confusion: Sequence[Sequence[int]] | None,
           samples: Sequence[dict[str, Any]], images: Sequence[Path]) -> str:
    """The report page: one HTML file with everything embedded."""
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'><title>zoo run report</title>", _STYLE,
             "</head><body>", "<h1>Run report</h1>"]
    monitor, epoch = run.get("monitor"), run.get("best_epoch")
    if epoch is not None:
        value = best.get(monitor) if monitor else None
        shown = f" ({e(str(monitor))} = {value:.4f})" if isinstance(value, (int, float)) else ""
        parts.append(f"<p id='best'>Saved model: epoch {epoch}{shown}, of {len(run['history'])} epochs.</p>")
    parts.append("<h2>Curves</h2><div class='plots'>")
    for path in images:
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(f"<figure><img alt='{e(path.stem)}' src='data:image/png;base64,{data}'>"
                     f"<figcaption>{e(path.name)}</figcaption></figure>")
    parts.append("</div>")
    if confusion is not None:
        parts.append(f"<h2>Per class (epoch {e(str(best.get('epoch')))})</h2>")
        parts.append("<table id='per-class'><tr><th>class</th><th>support</th><th>predicted</th><th>correct</th>"
                     "<th>precision</th><th>recall</th><th>F1</th></tr>")
        for row in per_class_rows(confusion, run.get("labels")):
            parts.append(f"<tr><td>{e(row['class'])}</td><td>{row['support']}</td><td>{row['predicted']}</td>"
                         f"<td>{row['correct']}</td><td>{row['precision']:.4f}</td><td>{row['recall']:.4f}</td>"
                         f"<td>{row['f1']:.4f}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Misclassified validation samples</h2>")
    if not samples:
        parts.append("<p>None recorded.</p>")
    else:
        parts.append("<table id='errors'><tr><th>input</th><th>predicted</th><th>true</th></tr>")
        for sample in samples:
            parts.append(f"<tr><td>{_sample_cell(sample)}</td><td>{e(str(sample['predicted']))}</td>"
                         f"<td>{e(str(sample['true']))}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _sample_cell(sample: dict[str, Any]) -> str:
    e = html.escape
    if sample.get("thumbnail"):
        return (f"<img class='thumb' alt='{e(str(sample.get('name', '')))}' "
                f"src='data:image/png;base64,{sample['thumbnail']}'><br>{e(str(sample.get('name', '')))}")
    if sample.get("kind") == "text":
        return f"<q>{e(str(sample.get('text', '')))}</q>"
    return e(str(sample.get("name", "")))


_STYLE = """<style>
body { font-family: sans-serif; margin: 2em; }
.plots { display: flex; flex-wrap: wrap; gap: 1em; }
.plots img { max-width: 600px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
td:first-child, th:first-child { text-align: left; }
img.thumb { max-width: 96px; }
</style>"""
