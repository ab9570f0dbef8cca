"""Key maps between a transformers checkpoint's layout and the model the card builds (no torch).

Checkpoints of one architecture come in two layouts: the bare encoder (``embeddings.*``, as
``AutoModel`` saves it) and a task model with the encoder under its ``base_model_prefix``
(``bert.embeddings.*``) plus heads. Cards name a map by function name (data, not code):

* ``base__<prefix>[__nopooler]``: to the bare encoder (feature extraction); heads of other tasks are dropped,
  and the optional pooler's tensors where the encoder is built without one;
* ``task__<prefix>__<head>[__<head>...]``: to a task model whose top-level head modules are named;
  a bare encoder gets the prefix, and pre-training heads (masked-LM, next-sentence) are dropped.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_SEPARATOR = "__"


def base_map_name(prefix: str, *, pooler: bool = True) -> str:
    suffix = "" if pooler else f"{_SEPARATOR}nopooler"
    return f"{__name__}:base{_SEPARATOR}{prefix}{suffix}"


def task_map_name(prefix: str, heads: list[str]) -> str:
    return f"{__name__}:task{_SEPARATOR}{prefix}{_SEPARATOR}{_SEPARATOR.join(heads)}"


def to_base(state: Mapping[str, Any], prefix: str, *, pooler: bool = True) -> dict[str, Any]:
    """The bare encoder's tensors: under ``prefix.`` when the checkpoint has them there, else all of them
    (without the optional pooler's, for an encoder built without one)."""
    lead = prefix + "."
    if any(key.startswith(lead) for key in state):
        state = {key[len(lead):]: value for key, value in state.items() if key.startswith(lead)}
    return {key: value for key, value in state.items() if pooler or not key.startswith("pooler.")}


def to_task(state: Mapping[str, Any], prefix: str, heads: tuple[str, ...]) -> dict[str, Any]:
    """A task model's tensors: the encoder under ``prefix.`` and the named heads; nothing else."""
    lead = prefix + "."
    if any(key.startswith(lead) for key in state):
        return {key: value for key, value in state.items()
                if key.startswith(lead) or key.split(".", 1)[0] in heads}
    return {lead + key: value for key, value in state.items()}


def __getattr__(name: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    kind, _, rest = name.partition(_SEPARATOR)
    parts = rest.split(_SEPARATOR) if rest else []
    if kind == "base" and len(parts) in (1, 2):
        return lambda state: to_base(state, parts[0], pooler=parts[1:] != ["nopooler"])
    if kind == "task" and len(parts) >= 2:
        return lambda state: to_task(state, parts[0], tuple(parts[1:]))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fit_layout(state: Mapping[str, Any], *, prefix: str, heads: list[str] | None = None,
               pooler: bool = True) -> dict[str, Any]:
    """`to_task` (with `heads`) or `to_base`, its arguments given as data (``extra["hf_key_map_args"]``)."""
    if heads is None:
        return to_base(state, prefix, pooler=pooler)
    return to_task(state, prefix, tuple(heads))


FIT_LAYOUT = f"{__name__}:fit_layout"
