"""Progress bars: tqdm when asked for and installed, otherwise a bar that shows nothing."""
from __future__ import annotations

from typing import Any, Literal, Protocol


class ProgressBar(Protocol):
    """What zoo uses of a progress bar: a tqdm bar or a `NoBar`."""

    def __enter__(self) -> ProgressBar: ...
    def __exit__(self, *exc: object) -> Literal[False] | None: ...
    def update(self, n: float = 1) -> object: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


class NoBar:
    """Stands in for a tqdm bar: every method does nothing."""

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return False

    def update(self, n: float = 1) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def progress_bar(*, enabled: bool, total: float | None, initial: float = 0, description: str = "",
                 **options: Any) -> ProgressBar:
    """A tqdm bar, or `NoBar` when disabled or when tqdm is missing (torch.hub users may not have it)."""
    if not enabled:
        return NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return NoBar()
    bar: ProgressBar = tqdm(total=total, initial=initial, desc=description, **options)
    return bar
