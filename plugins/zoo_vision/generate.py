"""Write ``catalog.json``: the cards of every torchvision classification model, from torchvision itself.

    python -m zoo_vision.generate            # rewrite catalog.json from the installed torchvision
    python -m zoo_vision.generate --check    # exit 1 when catalog.json is out of date

Everything a card says comes from torchvision: its model registry (names, builders),
each weights entry's ``meta`` and ``transforms``, and the module tree of each model
(built on the meta device, so no memory is allocated for weights) for the head, the
feature width and the layer groups. Only the family table below is written by hand:
which module prefixes make the layer groups of each architecture, and the builder
keywords a family needs. The plugin reads the JSON file without importing torch.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision import models as tv_models

from zoo.files import write_text_atomic

from .catalog import CATALOG, FORMAT_VERSION

BUILDER_MODULE = "torchvision.models"
AUX_KEY_MAP = "zoo_vision.keymaps:drop_aux_heads"
TORCHVISION_LICENSE = "BSD-3-Clause"
# Licences torchvision names by URL in a weights entry's meta["license"], as SPDX identifiers.
KNOWN_LICENSES = {"https://github.com/facebookresearch/SWAG/blob/main/LICENSE": "CC-BY-NC-4.0"}
_HASH_IN_URL = re.compile(r"-([0-9a-f]{6,64})\.pth$")


@dataclass(frozen=True)
class Family:
    """How one architecture family becomes cards.

    `groups` are module prefixes from the input side to the head; ``"x.*"`` stands for
    the children of ``x`` that hold parameters, ``"*"`` for the model's own children.
    `free` are parameters that sit outside every group (a class token): the layer-group
    helpers put them in the group of the parameter before them, the stem.
    `defaults` are builder keywords every card of the family gets. `size_keyword` is the
    builder keyword fixing the input size, for architectures whose weights need one.
    `layout` is what its feature stages output (``NCHW``, ``NHWC`` for Swin's channels-last maps, ``NLC``
    for ViT's tokens, of which the first `prefix_tokens` are no patch); `stages`, when given, is the
    module pattern (as in `groups`) the stages are taken from instead of the layer groups.
    """

    name: str
    pattern: str
    title: str
    groups: tuple[str, ...]
    free: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    size_keyword: str | None = None
    key_map: str | None = None
    lora_targets: tuple[str, ...] = ()
    layout: str = "NCHW"
    prefix_tokens: int = 0
    stages: str | None = None


_AUX_DEFAULTS = {"aux_logits": False, "transform_input": True, "init_weights": False}

FAMILIES = (
    Family("resnet", r"resnet\d+", "ResNet", ("*",)),
    Family("resnext", r"resnext\d+_\w+", "ResNeXt", ("*",)),
    Family("wide_resnet", r"wide_resnet\d+_2", "Wide ResNet", ("*",)),
    Family("efficientnet", r"efficientnet_b\d", "EfficientNet", ("features.*", "classifier.*")),
    Family("efficientnet_v2", r"efficientnet_v2_\w", "EfficientNetV2", ("features.*", "classifier.*")),
    Family("convnext", r"convnext_\w+", "ConvNeXt", ("features.*", "classifier.*")),
    Family("regnet", r"regnet_[xy]_\w+", "RegNet", ("stem", "trunk_output.*", "fc")),
    Family("mobilenet_v2", r"mobilenet_v2", "MobileNetV2", ("features.*", "classifier.*")),
    Family("mobilenet_v3", r"mobilenet_v3_\w+", "MobileNetV3", ("features.*", "classifier.*")),
    Family("vit", r"vit_[bhl]_\d+", "Vision Transformer",
           ("conv_proj", "encoder.layers.*", "encoder.ln", "heads.*"),
           free=("class_token", "encoder.pos_embedding"), size_keyword="image_size",
           layout="NLC", prefix_tokens=1, stages="encoder.layers.*",
           lora_targets=("encoder.layers.*.self_attention.out_proj", "encoder.layers.*.mlp.0",
                         "encoder.layers.*.mlp.3")),
    Family("swin", r"swin_[tsb]", "Swin Transformer", ("features.*", "norm", "head"),
           layout="NHWC", stages="features.*",
           lora_targets=("features.*.attn.qkv", "features.*.attn.proj", "features.*.mlp.0", "features.*.mlp.3")),
    Family("swin_v2", r"swin_v2_[tsb]", "Swin Transformer V2", ("features.*", "norm", "head"),
           layout="NHWC", stages="features.*",
           lora_targets=("features.*.attn.qkv", "features.*.attn.proj", "features.*.mlp.0", "features.*.mlp.3")),
    Family("maxvit", r"maxvit_t", "MaxViT", ("stem", "blocks.*", "classifier.*")),
    Family("densenet", r"densenet\d+", "DenseNet", ("features.*", "classifier")),
    Family("vgg", r"vgg\d+(_bn)?", "VGG", ("features.*", "classifier.*")),
    Family("shufflenet_v2", r"shufflenet_v2_x\d_\d", "ShuffleNetV2", ("*",)),
    Family("squeezenet", r"squeezenet1_\d", "SqueezeNet", ("features.*", "classifier.*")),
    Family("mnasnet", r"mnasnet\d_\d+", "MNASNet", ("layers.*", "classifier.*")),
    Family("googlenet", r"googlenet", "GoogLeNet (Inception v1)", ("*",),
           defaults=_AUX_DEFAULTS, key_map=AUX_KEY_MAP),
    Family("inception_v3", r"inception_v3", "Inception v3", ("*",), defaults=_AUX_DEFAULTS, key_map=AUX_KEY_MAP),
    Family("alexnet", r"alexnet", "AlexNet", ("features.*", "classifier.*")),
)


def family_of(name: str) -> Family:
    matches = [f for f in FAMILIES if re.fullmatch(f.pattern, name)]
    if len(matches) != 1:
        raise SystemExit(f"torchvision model {name!r} matches {len(matches)} families in zoo_vision.generate; "
                         "add it to FAMILIES (one pattern per family)")
    return matches[0]


# ---------------------------------------------------------------------------- building for inspection


@contextlib.contextmanager
def _no_init() -> Iterator[None]:
    """Skip the random initialisation of parameters (for builders that cannot run on the meta device)."""
    saved = {n: getattr(nn.init, n) for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")}
    try:
        for n in saved:
            setattr(nn.init, n, lambda tensor, *args, **kwargs: tensor)
        yield
    finally:
        for n, fn in saved.items():
            setattr(nn.init, n, fn)


def build_skeleton(builder_name: str, kwargs: dict[str, Any]) -> nn.Module:
    """The module tree of a model without real weights: on the meta device where the builder allows."""
    builder = tv_models.get_model_builder(builder_name)
    try:
        with torch.device("meta"):
            return builder(**kwargs)
    except NotImplementedError:  # builders that compute sizes with tensors (RegNet) need a real device
        with _no_init():
            return builder(**kwargs)


def find_head(model: nn.Module, num_classes: int) -> tuple[str, int]:
    """The last Linear/Conv2d that outputs `num_classes`, and the width of the features it reads."""
    found = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) and module.out_features == num_classes:
            found = (name, module.in_features)
        elif isinstance(module, nn.Conv2d) and module.out_channels == num_classes:
            found = (name, module.in_channels)
    if found is None:
        raise SystemExit(f"no Linear/Conv2d with {num_classes} outputs in {type(model).__name__}")
    return found


def expand_groups(model: nn.Module, family: Family) -> list[str]:
    """Resolve a family's group patterns on a model, and check they cover each parameter exactly once."""
    modules = dict(model.named_modules())
    prefixes: list[str] = []
    for pattern in family.groups:
        if pattern == "*" or pattern.endswith(".*"):
            parent = "" if pattern == "*" else pattern[:-2]
            for child, module in modules[parent].named_children():
                if any(True for _ in module.parameters()):
                    prefixes.append(f"{parent}.{child}" if parent else child)
        else:
            prefixes.append(pattern)
    missing = [p for p in prefixes if p not in modules]
    if missing:
        raise SystemExit(f"{family.name}: layer groups {missing} are not modules of {type(model).__name__}")
    for name, _ in model.named_parameters():
        owners = [p for p in prefixes if name == p or name.startswith(p + ".")]
        expected = 0 if name in family.free else 1
        if len(owners) != expected:
            raise SystemExit(f"{family.name}: parameter {name!r} lies in {len(owners)} layer groups {owners}; "
                             f"fix the family's groups in zoo_vision.generate")
    return prefixes


FEATURE_INPUT = 224  # the side of the input the stages are measured with


def feature_stages(builder_name: str, defaults: dict[str, Any], family: Family, head: str) -> list[dict[str, Any]]:
    """The stages `features_only=True` returns.

    Convolutional maps (``NCHW``, ``NHWC``): of the modules making the layer groups before the head (or
    the family's `stages` pattern), with the parameter-free children beside them such as ResNet's
    ``relu``, the last to output each reduction before the head runs. Tokens (``NLC``): every module
    of the family's `stages` pattern (each ViT encoder block), at the patch size.

    Measured with a forward pass of a `FEATURE_INPUT` image (or the size the family's `size_keyword`
    fixes) on the meta device: shapes only, no memory. A module counts when it runs once and outputs a
    map larger than 1x1 (or a token grid). Map reductions are rounded to a power of two (valid
    convolutions make Inception's maps a pixel or two smaller).
    """
    skeleton = build_skeleton(builder_name, defaults).eval()
    modules = dict(skeleton.named_modules())
    candidates: list[str] = []
    for pattern in (family.stages,) if family.stages else family.groups:
        if pattern == "*" or pattern.endswith(".*"):
            parent = "" if pattern == "*" else pattern[:-2]
            candidates += [f"{parent}.{child}" if parent else child for child, _ in modules[parent].named_children()]
        else:
            candidates.append(pattern)
    candidates = [c for c in candidates if c != head and not c.startswith(head + ".") and c in modules
                  and not isinstance(modules[c], nn.Dropout)]
    side = int(getattr(skeleton, family.size_keyword)) if family.size_keyword else FEATURE_INPUT
    seen: list[tuple[str, int, int]] = []
    calls: dict[str, int] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            if calls.get(head):  # what runs after the head (SqueezeNet's last ReLU) is no feature map
                return
            measured = _measure(output, family, side)
            if measured is not None:
                seen.append((name, *measured))
        return hook

    handles = [modules[name].register_forward_hook(record(name)) for name in [*candidates, head]]
    device = next(skeleton.parameters()).device
    with torch.no_grad():
        skeleton(torch.zeros(1, 3, side, side, device=device))
    for handle in handles:
        handle.remove()
    once = [(name, channels, reduction) for name, channels, reduction in seen if calls[name] == 1]
    if family.layout == "NLC":
        picked = once
    else:
        last: dict[int, tuple[str, int]] = {}
        for name, channels, reduction in once:
            last[reduction] = (name, channels)
        picked = [(last[r][0], last[r][1], r) for r in sorted(last)]
    order = {name: i for i, (name, _, _) in enumerate(seen)}
    if [order[name] for name, _, _ in picked] != sorted(order[name] for name, _, _ in picked):
        raise SystemExit(f"{builder_name}: feature stages {picked} do not run in order of reduction")
    layout = {"layout": family.layout} if family.layout != "NCHW" else {}
    prefix = {"prefix_tokens": family.prefix_tokens} if family.prefix_tokens else {}
    return [{"module": name, "channels": channels, "reduction": reduction, **layout, **prefix}
            for name, channels, reduction in picked]


def _measure(output: Any, family: Family, side: int) -> tuple[int, int] | None:
    """``(channels, reduction)`` of a module's output in the family's layout, or None when it is no map."""
    if not isinstance(output, torch.Tensor):
        return None
    if family.layout == "NLC":
        if output.dim() != 3:
            return None
        grid = math.isqrt(output.shape[1] - family.prefix_tokens)
        if grid * grid != output.shape[1] - family.prefix_tokens or side % grid:
            raise SystemExit(f"{family.name}: {output.shape[1]} tokens less {family.prefix_tokens} make no square "
                             f"grid dividing a {side}x{side} input; fix the family's prefix_tokens")
        return int(output.shape[2]), side // grid
    if output.dim() != 4:
        return None
    channels, width = (output.shape[3], output.shape[2]) if family.layout == "NHWC" else output.shape[1:4:2]
    if width <= 1:
        return None
    return int(channels), 2 ** round(math.log2(side / width))


# ---------------------------------------------------------------------------- weights metadata


def image_input(weights: Any) -> dict[str, Any]:
    preset = weights.transforms()
    crop = preset.crop_size[0] if isinstance(preset.crop_size, (list, tuple)) else preset.crop_size
    resize = preset.resize_size[0] if isinstance(preset.resize_size, (list, tuple)) else preset.resize_size
    return {
        "kind": "image",
        "size": int(crop),
        "mean": [float(v) for v in preset.mean],
        "std": [float(v) for v in preset.std],
        "resize_size": int(resize),
        "interpolation": preset.interpolation.value,
    }


def _clean_docs(text: str) -> str:
    """torchvision's reStructuredText notes as one plain line: ``text <url>`_`` becomes ``text (url)``."""
    text = re.sub(r"`([^`<]+?)\s*<([^>]+)>`_+", r"\1 (\2)", text or "")
    text = text.replace("``", "").replace("`", "")
    return " ".join(text.split())


def _license(meta: dict[str, Any], where: str) -> str:
    url = meta.get("license")
    if url is None:
        return TORCHVISION_LICENSE
    if url not in KNOWN_LICENSES:
        raise SystemExit(f"{where}: unknown licence {url!r}; add it to KNOWN_LICENSES in zoo_vision.generate")
    return KNOWN_LICENSES[url]


def weights_entry(weights: Any, labels_key: str | None, key_map: str | None) -> dict[str, Any]:
    meta = weights.meta
    where = f"{type(weights).__name__}.{weights.name}"
    digest = _HASH_IN_URL.search(weights.url)
    if digest is None:
        raise SystemExit(f"{where}: no hash in the file name of {weights.url}")
    metrics: dict[str, float] = {}
    for dataset, values in meta.get("_metrics", {}).items():
        if dataset != "ImageNet-1K":
            raise SystemExit(f"{where}: metrics on {dataset!r}; only ImageNet-1K is expected")
        metrics.update({k: float(v) for k, v in values.items() if not math.isnan(v)})
    categories = meta.get("categories")
    notes = _clean_docs(meta.get("_docs", ""))
    notes = f"{notes} Checkpoint file: {float(meta['_file_size']):g} MiB.".strip()
    if meta.get("recipe"):
        notes = f"{notes} Training recipe: {meta['recipe']}"
    entry: dict[str, Any] = {
        "source": weights.url,
        "sha256": digest.group(1),
        # The classifier in a file without categories still has 1000 outputs (ImageNet-sized).
        "num_classes": len(categories) if categories else 1000,
        "labels": labels_key,
        "license": _license(meta, where),
        "metrics": metrics,
        "num_params": int(meta["num_params"]),
        "gflops": float(meta["_ops"]) if "_ops" in meta else None,  # torchvision's GFLOPS at the weights' size
        # No "file_size": the field is an exact byte count that downloads are checked against, and
        # torchvision gives only MiB rounded to 2-3 decimals; that figure goes into the description.
        "input": image_input(weights),
        "key_map": key_map,
        "description": notes,
    }
    return {k: v for k, v in entry.items() if v is not None}


# ---------------------------------------------------------------------------- cards


def tag_of(weights: Any) -> str:
    """The zoo weights tag: torchvision's enum member name, lowercased (``IMAGENET1K_V2`` -> ``imagenet1k_v2``)."""
    return weights.name.lower()


def _builder_default(builder_name: str, keyword: str) -> Any:
    """The value a builder uses for a size keyword when not given (the model keeps it as an attribute)."""
    skeleton = build_skeleton(builder_name, {})
    if not hasattr(skeleton, keyword):
        raise SystemExit(f"{builder_name}: the model does not record {keyword!r}; fix Family.size_keyword")
    return getattr(skeleton, keyword)


def _variants(builder_name: str, family: Family) -> dict[tuple, list[Any]]:
    """Weights grouped by the builder keywords they need (one card per group)."""
    groups: dict[tuple, list[Any]] = {}
    default_size = _builder_default(builder_name, family.size_keyword) if family.size_keyword else None
    for weights in tv_models.get_model_weights(builder_name):
        extra: tuple = ()
        if family.size_keyword:
            size = weights.meta["min_size"][0]
            if size != default_size:
                extra = ((family.size_keyword, size),)
        groups.setdefault(extra, []).append(weights)
    return groups


def _card_name(builder_name: str, family: Family, size_kwargs: tuple) -> str:
    size = dict(size_kwargs).get(family.size_keyword)
    return f"{builder_name}_{size}" if size else builder_name


def builder_weights(builder_name: str, name: str, homes: dict[Any, str]) -> dict[str, Any]:
    """How torchvision's ``weights=`` values map to zoo's tags on card `name` (``card.tag`` when on another card).

    `homes` gives the card each weights entry lives on. zoo then loads them itself, checked by sha256.
    """
    enum_class = tv_models.get_model_weights(builder_name)
    members = {**{w.name: w for w in enum_class}, "DEFAULT": enum_class.DEFAULT}
    names = {key: tag_of(w) if homes[w] == name else f"{homes[w]}.{tag_of(w)}" for key, w in members.items()}
    return {"keyword": "weights", "enum": enum_class.__name__, "names": names}


def card_dicts(builder_name: str, labels: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The cards of one torchvision builder: one, or one per input size its weights need (ViT)."""
    family = family_of(builder_name)
    default_enum = tv_models.get_model_weights(builder_name).DEFAULT
    variants = _variants(builder_name, family)
    homes = {w: _card_name(builder_name, family, size_kwargs) for size_kwargs, ws in variants.items() for w in ws}
    cards = []
    for size_kwargs, weights_list in variants.items():
        defaults = {**family.defaults, **dict(size_kwargs)}
        size = dict(size_kwargs).get(family.size_keyword)
        name = _card_name(builder_name, family, size_kwargs)
        weights = {tag_of(w): weights_entry(w, _labels_key(w, labels), family.key_map) for w in weights_list}
        default = tag_of(default_enum if default_enum in weights_list else weights_list[0])
        skeleton = build_skeleton(builder_name, defaults)
        head, num_features = find_head(skeleton, weights[default]["num_classes"])
        params = sum(p.numel() for p in skeleton.parameters())
        size_note = f" at {size}x{size} input" if size else ""
        extra: dict[str, Any] = {
            "min_size": int(max(w.meta["min_size"][0] for w in weights_list)),
            "torchvision_builder": builder_name,
            "builder_weights": builder_weights(builder_name, name, homes),
        }
        if family.lora_targets:
            extra["lora_targets"] = list(family.lora_targets)
        card = {
            "name": name,
            "builder": f"{BUILDER_MODULE}:{builder_name}",
            "task": "image-classification",
            "modality": "image",
            "family": family.name,
            "description": f"{family.title} {builder_name}{size_note} from torchvision: "
                           f"{params / 1e6:.1f}M parameters, {num_features}-d pooled features",
            "defaults": defaults,
            "input": weights[default]["input"],
            "head": head,
            "layer_groups": expand_groups(skeleton, family),
            "weights": weights,
            "default_weights": default,
            "num_features": num_features,
            "extra": extra,
            "feature_stages": feature_stages(builder_name, defaults, family, head),
        }
        cards.append({k: v for k, v in card.items() if v not in ({}, None, [])})
    return cards


def _labels_key(weights: Any, labels: dict[str, list[str]]) -> str | None:
    """The name under which this weights entry's category list is stored once in the catalogue."""
    categories = weights.meta.get("categories")
    if not categories:
        return None
    for key, known in labels.items():
        if known == list(categories):
            return key
    datasets = list(weights.meta.get("_metrics", {})) or ["labels"]
    base = re.sub(r"[^a-z0-9]+", "-", datasets[0].lower()).strip("-")
    key, n = base, 2
    while key in labels:
        key, n = f"{base}-{n}", n + 1
    labels[key] = list(categories)
    return key


def build_catalog() -> dict[str, Any]:
    """The whole catalogue as plain data (what catalog.json holds)."""
    labels: dict[str, list[str]] = {}
    cards = []
    for builder_name in tv_models.list_models(module=tv_models):
        cards.extend(card_dicts(builder_name, labels))
    return {
        "format": FORMAT_VERSION,
        "generated_by": "python -m zoo_vision.generate",
        "torchvision": torchvision.__version__.split("+")[0],
        "labels": labels,
        "cards": sorted(cards, key=lambda c: c["name"]),
    }


def render(catalog: dict[str, Any]) -> str:
    """JSON with one key per line, but lists of plain values (labels, mean, std) on one line each."""
    return _render(catalog, 0) + "\n"


def _render(value: Any, depth: int) -> str:
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_render(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return "[\n" + ",\n".join(inner + _render(v, depth + 1) for v in value) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False)


@functools.lru_cache(maxsize=1)
def _fresh_text() -> str:
    return render(build_catalog())


def stale_reason(path: Path = CATALOG) -> str | None:
    """Why the file at `path` differs from what the installed torchvision gives, or None when it is current."""
    fresh = json.loads(_fresh_text())
    if not path.is_file():
        return f"{path} does not exist"
    current = json.loads(path.read_text(encoding="utf-8"))
    ignore = {"torchvision"}  # the version alone does not make the cards differ
    if {k: v for k, v in current.items() if k not in ignore} == {k: v for k, v in fresh.items() if k not in ignore}:
        return None
    names_now = {c["name"] for c in current.get("cards", [])}
    names_fresh = {c["name"] for c in fresh["cards"]}
    changed = sorted(c["name"] for c in fresh["cards"] if c not in current.get("cards", []))
    return (f"{path} was generated from torchvision {current.get('torchvision')} and differs from torchvision "
            f"{fresh['torchvision']}: new {sorted(names_fresh - names_now)}, gone {sorted(names_now - names_fresh)}, "
            f"changed {changed[:10]}. Run: python -m zoo_vision.generate")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the catalogue is out of date")
    parser.add_argument("--output", type=Path, default=CATALOG)
    args = parser.parse_args(argv)
    if args.check:
        reason = stale_reason(args.output)
        print(reason or f"{args.output} is up to date")
        return 1 if reason else 0
    catalog = build_catalog()
    write_text_atomic(args.output, render(catalog))
    weights = sum(len(c["weights"]) for c in catalog["cards"])
    print(f"wrote {args.output}: {len(catalog['cards'])} cards, {weights} weights, "
          f"torchvision {catalog['torchvision']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
