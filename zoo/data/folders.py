"""Datasets from folders with one sub-folder per class: ``ROOT/<class>/<file>``.

`image_folder` and `audio_folder` read the files with the preprocessing the model's card
asks for (`zoo.data.images.image_transform`, `zoo.data.audio.audio_transform`). Class
indices follow the sorted sub-folder names; a validation folder reuses the training
folder's classes (``classes=train.classes``).
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..errors import DataError
from . import class_folders, files_under, require_two_classes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class FolderDataset(Dataset[tuple[Any, int]]):
    """``(sample, class index)`` pairs from class sub-folders.

    Every class folder must hold files; `train` data must hold files of at least two classes.
    With `skip_bad`, files `check` rejects are left out (with a warning) when the folder is
    scanned; without it, a bad file is a `DataError` naming it when it is read.

    Attributes: ``classes`` (names, index order), ``samples`` (``(path, index)`` pairs),
    ``transform`` (path -> model input), ``augments`` (True when the transform is random),
    ``collate_fn`` (how to batch, or None for the default) and ``fingerprint`` (what
    identifies the data, for the feature cache).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        extensions: Sequence[str],
        transform: Callable[[Path], Any],
        kind: str = "files",
        classes: Sequence[str] | None = None,
        check: Callable[[Path], Any] | None = None,
        skip_bad: bool = False,
        train: bool = False,
        augments: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        self.transform = transform
        self.augments = augments
        self.collate_fn = collate_fn
        self.skip_bad = skip_bad
        self.classes, samples = scan_class_folders(self.root, extensions, kind=kind, classes=classes)
        if skip_bad and check is not None:
            samples = self._readable(samples, check, kind)
        if train:
            require_two_classes({self.classes[label] for _, label in samples}, f"training data {self.root}",
                                f"put each class's {kind} in its own sub-folder, {self.root}/<class name>/")
        self.samples: list[tuple[Path, int]] = samples

    def _readable(self, samples: list[tuple[Path, int]], check: Callable[[Path], Any],
                  kind: str) -> list[tuple[Path, int]]:
        """The samples `check` accepts (a warning names the others); a class left without any is an error."""
        kept = _drop_unreadable(samples, check)
        emptied = sorted({label for _, label in samples} - {label for _, label in kept})
        if emptied:
            folders = ", ".join(str(self.root / self.classes[label]) for label in emptied)
            raise DataError(f"no readable {kind} left in {folders} after skipping the unreadable ones: "
                            "fix or replace them, or remove the folder")
        return kept

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        try:
            sample = self.transform(path)
        except Exception as exc:
            problem = str(exc).rstrip(".") if str(path) in str(exc) else f"cannot read {path}: {exc}"
            raise DataError(f"{problem}. Fix or remove the file, or skip unreadable files "
                            "(skip_bad=True, or --skip-bad on the command line)") from exc
        return sample, label

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    @property
    def fingerprint(self) -> dict[str, Any]:
        """The files (with size and modification time), their classes and the class names."""
        return {"classes": list(self.classes), "files": [path for path, _ in self.samples], "labels": self.targets}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, samples={len(self)}, classes={len(self.classes)})"


def scan_class_folders(root: Path, extensions: Sequence[str], *, kind: str = "files",
                       classes: Sequence[str] | None = None) -> tuple[list[str], list[tuple[Path, int]]]:
    """Class names and ``(path, class index)`` pairs, sorted; clear errors for empty folders.

    With `classes` given (a validation split), a class may lack its folder, but a class
    folder that exists must hold files, as everywhere.
    """
    found = class_folders(root, kind)
    if classes is None:
        names = found
    else:
        names = list(classes)
        unknown = sorted(set(found) - set(names))
        if unknown:
            raise DataError(f"{root} has classes the model was not trained on: {unknown}; "
                            f"known classes are {names}")
    suffixes = tuple(e.lower() for e in extensions)
    samples: list[tuple[Path, int]] = []
    for index, name in enumerate(names):
        folder = root / name
        if not folder.is_dir():
            continue  # a validation folder may lack a class
        files = sorted(files_under(folder, suffixes))
        if not files:
            raise DataError(f"class folder {folder} has no {kind} (looked for {', '.join(suffixes)}); "
                            "add some or remove the folder")
        samples.extend((path, index) for path in files)
    return names, samples


def _drop_unreadable(samples: list[tuple[Path, int]], check: Callable[[Path], Any]) -> list[tuple[Path, int]]:
    """The samples `check` accepts; a warning names the others. Files are checked on a few threads
    (decoders release the GIL), since a full check decodes every file."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        problems = list(pool.map(lambda sample: _problem(check, sample[0]), samples))
    bad = [problem for problem in problems if problem is not None]
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        warnings.warn(f"skipped {len(bad)} unreadable file(s): {shown}", stacklevel=4)
    return [sample for sample, problem in zip(samples, problems) if problem is None]


def _problem(check: Callable[[Path], Any], path: Path) -> str | None:
    """None when `check` accepts the file, else what is wrong with it."""
    try:
        check(path)
    except Exception as exc:  # any failure to read means the file cannot be used
        return f"{path} ({exc})"
    return None


# ---------------------------------------------------------------------------- images


class ImageFileTransform:
    """path -> RGB PIL image (`zoo.data.images.read_image`) -> the card's image transform (picklable).

    A transform that begins with a random resized crop is applied by
    `zoo.data.fast_train_images` (the box drawn first, JPEGs decoded at reduced size).
    """

    def __init__(self, transform: Callable[[Any], Any]) -> None:
        from .fast_train_images import train_file_reader  # reason: imports torchvision, only once images are read

        self.transform = transform
        self.fast = train_file_reader(transform)

    def __call__(self, path: Path) -> Any:
        from .images import read_image

        if self.fast is not None:
            return self.fast(path)
        return self.transform(read_image(path))

    def __repr__(self) -> str:
        return f"ImageFileTransform({self.fast if self.fast is not None else self.transform!r})"


def check_image(path: Path) -> None:
    """Raise unless the file decodes whole into RGB as training will read it.

    ``verify()`` checks a PNG's chunk checksums, which decoding skips; decoding finds what
    ``verify()`` misses: a truncated JPEG, a PNG whose compressed pixels are damaged, and
    pixel formats `zoo.data.images.to_rgb` refuses.
    """
    from PIL import Image

    from .images import read_image

    with Image.open(path) as image:
        image.verify()
    read_image(path)


def image_folder(root: str | os.PathLike[str], spec: Any, *, train: bool = False, augment: bool = True,
                 classes: Sequence[str] | None = None, skip_bad: bool = False) -> FolderDataset:
    """Images in class sub-folders, prepared as the card's `spec` (a `zoo.ImageInput`) says.

    `train` with `augment` uses the random training transform; otherwise the evaluation one.
    Evaluation-transform files are read by `zoo.data.fast_images` (JPEGs decoded at reduced size).
    """
    from .fast_images import FastImageFile
    from .images import image_input, image_transform

    random = train and augment
    transform: Callable[[Path], Any] = (ImageFileTransform(image_transform(spec, train=True)) if random
                                        else FastImageFile(image_input(spec)))
    return FolderDataset(root, extensions=IMAGE_EXTENSIONS, kind="images", classes=classes, check=check_image,
                         skip_bad=skip_bad, train=train, augments=random, transform=transform)


# ---------------------------------------------------------------------------- audio


def audio_folder(root: str | os.PathLike[str], spec: Any, *, train: bool = False, augment: bool = True,
                 classes: Sequence[str] | None = None, skip_bad: bool = False) -> FolderDataset:
    """Audio clips in class sub-folders, read with soundfile and resampled to the card's rate.

    Batches are `zoo.data.audio.AudioBatch` ``(waveforms, lengths, labels)``: the model is
    called as ``model(waveforms, lengths)``.
    """
    from .audio import AUDIO_EXTENSIONS, audio_transform, collate_audio, read_audio

    random = train and augment
    # no private generator: the trainer seeds each batch, which keeps random crops reproducible
    return FolderDataset(root, extensions=AUDIO_EXTENSIONS, kind="audio clips", classes=classes, check=read_audio,
                         skip_bad=skip_bad, train=train, augments=random, transform=audio_transform(spec, train=random),
                         collate_fn=collate_audio)
