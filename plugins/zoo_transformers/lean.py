"""Building a transformers model for zoo's lean loading without initialising parameters that hold no values.

zoo builds a model with its parameters on the ``meta`` device and then assigns the checkpoint's tensors in their
place. transformers still runs its weight initialisation (``initialize_weights``) on those meta tensors, which
computes nothing and, through PyTorch's meta kernels, costs about 0.1 s for a BERT-base: as much as loading the
weights. While the family builds, parameters on meta are marked initialised the way transformers marks the ones
it loads itself (``_is_hf_initialized``), so its initialisers skip them; buffers and real parameters (a build
that is not lean) are initialised as always, and the marks are removed afterwards.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

_BUILDING = threading.local()  # depth > 0 while this thread builds a model of the family
_INSTALL_LOCK = threading.Lock()
_MARK = "_is_hf_initialized"


def _install(pretrained_model: Any) -> None:
    """Wrap ``PreTrainedModel.initialize_weights`` once; the wrapper acts only in a thread inside `building`."""
    with _INSTALL_LOCK:
        original = getattr(pretrained_model, "initialize_weights", None)
        if original is None or getattr(original, "zoo_lean", False):
            return

        @functools.wraps(original)
        def initialize_weights(self: Any, *args: Any, **kwargs: Any) -> Any:
            if not getattr(_BUILDING, "depth", 0):
                return original(self, *args, **kwargs)
            marked = [p for p in self.parameters() if p.is_meta and not getattr(p, _MARK, False)]
            for param in marked:
                setattr(param, _MARK, True)
            try:
                return original(self, *args, **kwargs)
            finally:
                for param in marked:
                    delattr(param, _MARK)

        initialize_weights.zoo_lean = True  # type: ignore[attr-defined]
        pretrained_model.initialize_weights = initialize_weights


@contextlib.contextmanager
def building(transformers: Any) -> Iterator[None]:
    """While active, transformers' weight initialisation in this thread leaves parameters on meta alone."""
    pretrained_model = getattr(transformers, "PreTrainedModel", None)
    if pretrained_model is not None:
        _install(pretrained_model)
    _BUILDING.depth = getattr(_BUILDING, "depth", 0) + 1
    try:
        yield
    finally:
        _BUILDING.depth -= 1
