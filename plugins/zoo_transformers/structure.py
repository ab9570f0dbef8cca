"""Card data read off a built transformers model: head, layer groups, LoRA targets, feature stages.

Nothing here is per architecture: the encoder's layers are its largest list of blocks, the head is
the last linear layer outside the encoder with the task's output count, and everything else takes
its place around them in registration order.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from torch import nn


@dataclass
class Structure:
    head: str | None
    layer_groups: list[str]
    layers: str
    num_layers: int
    lora_targets: list[str]
    head_roots: list[str] = field(default_factory=list)


def head_path(inner: nn.Module, task: str, hf_config: Any) -> str:
    """Dotted path of the layer producing the task's outputs (outside the encoder)."""
    prefix = getattr(inner, "base_model_prefix", "")
    outputs = hf_config.vocab_size if task == "automatic-speech-recognition" else hf_config.num_labels
    found = [name for name, module in inner.named_modules()
             if isinstance(module, nn.Linear) and module.out_features == outputs
             and not (name == prefix or name.startswith(prefix + "."))]
    if not found:
        raise ValueError(f"{type(inner).__name__} has no linear layer of {outputs} outputs outside its encoder")
    return found[-1]


def covering_head(model: nn.Module, output: str, fresh: list[str]) -> str:
    """The smallest module holding the output layer and every fresh parameter (one the checkpoint does not
    hold: a new dense layer before the output layer), so the fresh ones train wherever the head trains.

    Where only the whole model holds them all (a fresh pooler beside the classifier, not inside it), the output
    layer is returned: a head path names one module, and the whole model is no head; the fresh modules beside
    it are its companions (`head_companions`).
    """
    common = output.split(".")
    for name in fresh:
        parts = name.split(".")[:-1]  # the module holding the parameter
        depth = 0
        while depth < min(len(common), len(parts)) and common[depth] == parts[depth]:
            depth += 1
        common = common[:depth]
    found = ".".join(common)
    if not found:
        return output
    model.get_submodule(found)  # a module, not a parameter's prefix only
    return found


def head_companions(model: nn.Module, head: str, fresh: list[str]) -> list[str]:
    """The modules beside `head` that hold the fresh parameters outside it (DeBERTa's pooler, wav2vec2's
    projector), each the largest module around them whose parameters are all fresh and that does not hold the
    head; in registration order."""
    fresh_set = set(fresh)
    params = {name: {p for p, _ in module.named_parameters(prefix=name)} for name, module in model.named_modules()}
    found: list[str] = []
    for name in fresh:
        if name == head or name.startswith(head + "."):
            continue
        parts = name.split(".")[:-1]
        chosen = None
        for depth in range(1, len(parts) + 1):
            path = ".".join(parts[:depth])
            if (head == path or head.startswith(path + ".")) or not params[path] <= fresh_set:
                continue
            chosen = path
            break
        chosen = chosen or name  # a fresh parameter of a module that also holds loaded ones: the parameter alone
        if chosen not in found:
            found.append(chosen)
    order = [name for name, _ in model.named_modules()]
    return sorted(found, key=lambda path: order.index(path) if path in order else len(order))


def fresh_parameters(model: nn.Module, loaded: set[str]) -> list[str]:
    """Names of the parameters of `model` that `loaded` (the state-dict keys a checkpoint fills) leaves out;
    a tied parameter counts as loaded when any of its names is."""
    names: dict[int, list[str]] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        names.setdefault(id(param), []).append(name)
    return [group[0] for group in names.values() if not any(name in loaded for name in group)]


def _param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _linear_count(module: nn.Module) -> int:
    return sum(_param_count(m) for m in module.modules() if isinstance(m, nn.Linear))


def _layer_list(root: nn.Module) -> tuple[str, nn.ModuleList]:
    """The list of blocks holding most of the linear layers' parameters (the encoder's attention layers, not a
    convolutional front end), or of all parameters in a model without linear layers (a conv net's stages)."""
    lists = [(name, m) for name, m in root.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
    if not lists:
        raise ValueError(f"{type(root).__name__} has no list of layers")
    return max(lists, key=lambda item: (_linear_count(item[1]), _param_count(item[1])))


def _has_params(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def structure(model: nn.Module, head: str | None, companions: Sequence[str] = ()) -> Structure:
    """The structure of a built `zoo_transformers.model.TransformersModel` (or any module); the head's
    `companions` are no layer groups of their own (they are in the head's)."""
    layers, blocks = _layer_list(model)
    parts = layers.split(".")
    before: list[str] = []
    after: list[str] = []
    node: nn.Module = model
    for depth, part in enumerate(parts):
        prefix = ".".join(parts[:depth])
        seen = False
        level_after = []
        for name, child in node.named_children():
            path = f"{prefix}.{name}" if prefix else name
            if name == part:
                seen = True
            elif _has_params(child):
                (level_after if seen else before).append(path)
        after = level_after + after
        node = getattr(node, part)
    groups = before + [f"{layers}.{i}" for i in range(len(blocks))] + after
    groups = [g for g in groups if not any(g == c or g.startswith(c + ".") for c in companions)]
    if head:  # the head's own top-level module comes last, whatever order the model registered it in
        root = head.split(".", 1)[0]
        groups = [g for g in groups if g.split(".", 1)[0] != root or g.startswith(layers)] + \
                 [g for g in groups if g.split(".", 1)[0] == root and not g.startswith(layers)]
        if not any(head == g or head.startswith(g + ".") for g in groups):
            groups.append(head)
    roots = sorted({g.split(".", 1)[0] for g in after} | ({head.split(".", 1)[0]} if head else set()))
    return Structure(head=head, layer_groups=groups, layers=layers, num_layers=len(blocks),
                     lora_targets=lora_targets(model, layers), head_roots=roots)


def positions_after_padding(model: nn.Module) -> bool:
    """Whether the model numbers positions from ``pad_token_id + 1`` (RoBERTa's scheme): its position table keeps
    a padding row (``padding_idx``), which no token's position uses, as every model type built so does."""
    return any(isinstance(module, nn.Embedding) and module.padding_idx is not None
               for name, module in model.named_modules() if name.rsplit(".", 1)[-1] == "position_embeddings")


def lora_targets(model: nn.Module, layers: str) -> list[str]:
    """Wildcard names of the linear layers in the blocks (attention and MLP), one pattern per kind."""
    patterns: list[str] = []
    lead = layers + "."
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and name.startswith(lead):
            pattern = lead + re.sub(r"(^|\.)\d+(?=\.|$)", r"\1*", name[len(lead):])
            if pattern not in patterns:
                patterns.append(pattern)
    return patterns
