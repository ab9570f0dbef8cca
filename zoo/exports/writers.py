"""Writing a model as ONNX or as a `torch.export` program, with exporter failures cut to one line.

A model that cannot be exported fails with an `ExportError` naming the operation: the aten
operation the ONNX exporter has no function for, or the data-dependent Python branch (and the
line of the model's code) that `torch.export` cannot trace.
"""
from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..errors import ZooError
from .inputs import ExampleInputs

ONNX_FILE = "model.onnx"
PROGRAM_FILE = "model.pt2"
_OP = re.compile(r"OpOverload\(op='([\w.]+)'(?:, overload='(\w+)')?\)|(aten[.:]{1,2}\w+)")
_CODE = re.compile(r'File "([^"]+)", line (\d+), in \w+\n\s+(.+)')


class ExportError(ZooError):
    """The exporter refused the model; the message names the operation it stopped at."""


def export_program(model: nn.Module, inputs: ExampleInputs) -> torch.export.ExportedProgram:
    """`torch.export.export` of `model` on `inputs`, with their free dimensions dynamic."""
    with quiet():
        return torch.export.export(model, inputs.tensors, dynamic_shapes=inputs.dynamic_shapes())


def write_program(model: nn.Module, inputs: ExampleInputs, path: Path, name: str) -> None:
    """The exported program of `model`, saved with `torch.export.save`."""
    try:
        program = export_program(model, inputs)
    except Exception as exc:  # noqa: BLE001 - every exporter failure becomes one line naming the operation
        raise export_failure(exc, name, "exported-program") from None
    torch.export.save(program, str(path))


def write_onnx(model: nn.Module, inputs: ExampleInputs, path: Path, name: str, output_names: list[str]) -> None:
    """`model` as an ONNX file (torch's dynamo exporter, weights inside the file), its free dimensions named."""
    try:
        with quiet():
            program = torch.onnx.export(model, inputs.tensors, dynamo=True, verbose=False,
                                        dynamic_shapes=inputs.dynamic_shapes(), input_names=list(inputs.names),
                                        output_names=output_names)
    except Exception as exc:  # noqa: BLE001 - every exporter failure becomes one line naming the operation
        raise export_failure(exc, name, "onnx") from None
    if program is None:
        raise ExportError(f"cannot export {name} to ONNX: the exporter returned no program")
    _name_free_dimensions(program.model_proto, inputs)
    program.save(str(path))


def _name_free_dimensions(proto: object, inputs: ExampleInputs) -> None:
    """Give the inputs' free dimensions the names serving.json uses (batch, sequence, samples)."""
    renames: dict[str, str] = {}
    for graph_input, axes in zip(proto.graph.input, inputs.free):  # type: ignore[attr-defined]
        dims = graph_input.type.tensor_type.shape.dim
        for axis, label in axes.items():
            if axis < len(dims) and dims[axis].dim_param:
                renames.setdefault(dims[axis].dim_param, label)
    for value in [*proto.graph.input, *proto.graph.output]:  # type: ignore[attr-defined]
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in renames:
                dim.dim_param = renames[dim.dim_param]


def export_failure(exc: BaseException, name: str, fmt: str) -> ExportError:
    """One line saying which operation stopped the export of `name`."""
    text = "\n".join(str(e) for e in _chain(exc))
    kinds = {type(e).__name__ for e in _chain(exc)}
    code = _CODE.search(text)
    where = f" at {Path(code.group(1)).name}:{code.group(2)} `{code.group(3).strip()}`" if code else ""
    if "GuardOnDataDependentSymNode" in kinds or "data-dependent" in text:
        return ExportError(f"cannot export {name} to {fmt}: a Python branch on a tensor's value (aten.item, "
                           f"data-dependent control flow){where}; rewrite it with torch.where or torch.cond")
    op = _OP.search(text)
    if op:
        found = op.group(1) + (f".{op.group(2)}" if op.group(2) else "") if op.group(1) else op.group(3)
        found = found.replace("::", ".")
        return ExportError(f"cannot export {name} to {fmt}: operation {found} is not supported by the exporter"
                           f"{where}")
    first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return ExportError(f"cannot export {name} to {fmt}: {type(exc).__name__}: {first.strip()}{where}")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The exporters' warnings and log lines kept off the terminal (their failures are raised, not logged)."""
    loggers = [logging.getLogger(name) for name in ("", "torch", "torch.export", "torch.onnx", "torch._dynamo",
                                                    "torch.fx.experimental.symbolic_shapes", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
