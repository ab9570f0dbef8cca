"""Progress bars: tqdm when asked for and installed, otherwise a bar that shows nothing."""
from __future__ import annotations

from typing import Any


class NoBar:
    """Stands in for a tqdm bar: every method does nothing."""

    def __enter__(self) -> NoBar:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def update(self, n: float = 1) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def progress_bar(*, enabled: bool, total: float | None, initial: float = 0, description: str = "",
                 **options: Any) -> Any:
    """A tqdm bar, or `NoBar` when disabled or when tqdm is missing (torch.hub users may not have it)."""
    if not enabled:
        return NoBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return NoBar()
    return tqdm(total=total, initial=initial, desc=description, **options)
