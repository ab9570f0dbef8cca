"""A confusion matrix as a picture (RGB pixels) for the loggers, drawn with Pillow alone.

Rows are true classes and columns predicted ones; each cell's shade is its share of the row
(white: none, dark blue: all of it) and it shows its count. Class names label the rows and the
columns (cut to fit). Loggers take the array: TensorBoard's ``add_image``, MLflow's ``log_image``
and W&B's ``Image``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 28          # pixels per cell
NAME_CHARS = 10    # a class name is cut to this many characters
_DARK = np.array([8, 48, 107])    # the shade of a row's whole share
_LIGHT = np.array([255, 255, 255])


def confusion_image(matrix: Sequence[Sequence[int]], labels: Sequence[str] | None = None) -> np.ndarray:
    """``(height, width, 3)`` uint8 pixels of `matrix`, normalised per row, with `labels` on both axes."""
    counts = np.asarray(matrix, dtype=np.float64)
    size = counts.shape[0]
    names = [str(n)[:NAME_CHARS] for n in (labels if labels is not None and len(labels) == size else range(size))]
    font = ImageFont.load_default()
    margin = max(int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(n, font=font)) for n in names) + 8
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    image = Image.new("RGB", (margin + size * CELL + 4, margin + size * CELL + 4), "white")
    pen = ImageDraw.Draw(image)
    for row in range(size):
        pen.text((2, margin + row * CELL + CELL // 3), names[row], fill="black", font=font)
        for col in range(size):
            colour = tuple(int(v) for v in _LIGHT + (_DARK - _LIGHT) * shares[row, col])
            left, top = margin + col * CELL, margin + row * CELL
            pen.rectangle((left, top, left + CELL - 1, top + CELL - 1), fill=colour, outline=(200, 200, 200))
            ink = "white" if shares[row, col] > 0.5 else "black"
            pen.text((left + 3, top + CELL // 3), str(int(counts[row, col])), fill=ink, font=font)
    # column names written downwards, so long names fit above narrow columns
    header = Image.new("RGB", (margin, size * CELL), "white")
    header_pen = ImageDraw.Draw(header)
    for col in range(size):
        header_pen.text((4, col * CELL + CELL // 3), names[col], fill="black", font=font)
    image.paste(header.rotate(90, expand=True), (margin, 0))
    return np.asarray(image, dtype=np.uint8)
