"""Write ``catalog.json``: a card for every timm architecture and its pretrained weights, from timm itself.

    python -m zoo_timm.generate              # rewrite catalog.json (and index.json) from the installed timm
    python -m zoo_timm.generate --check      # exit 1 when catalog.json is out of date
    python -m zoo_timm.generate --index-only # rewrite index.json from the catalog.json there is (seconds)

Everything a card says comes from the installed timm: its model registry (``timm.list_models()``,
``timm.list_pretrained()``), each weights tag's pretrained config (input size, interpolation, crop
percentage, mean, std, classes, licence, Hub repo, classifier, first convolution), the label lists timm
ships (`timm.data.ImageNetInfo`), and the module tree of each model, built on the meta device (no memory
for weights): the head's width, the layer groups from the model's own ``group_matcher``, the feature
stages from its ``feature_info`` (their layout measured with one forward pass on meta), the parameter
count, the Linear layers LoRA adapts, and the create-time options its constructor takes. Architectures
are inspected in worker processes; those that cannot be built on meta are left out and counted.

``index.json`` beside the catalogue holds what listing reads of it (`zoo_timm.catalog.summaries`), so
`zoo list` parses a small file instead of the whole catalogue; it is derived from ``catalog.json`` alone.
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import inspect
import json
import math
import re
import sys
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from zoo.files import write_text_atomic

from .catalog import CATALOG, FORMAT_VERSION, INDEX_NAME, summaries

# The Hub's licence names for timm weights as SPDX identifiers, where SPDX has one; others keep the Hub's name.
SPDX = {"apache-2.0": "Apache-2.0", "mit": "MIT", "bsd-3-clause": "BSD-3-Clause", "cc-by-nc-4.0": "CC-BY-NC-4.0",
        "cc-by-4.0": "CC-BY-4.0", "gemma": "LicenseRef-gemma"}
HUB_ORG = "timm/"  # weights in timm's own format; other organisations' repos may need timm's key conversions
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
LORA_NAMES = re.compile(r"(^|\.)(qkv|q|k|v|kv|q_proj|k_proj|v_proj|qkv_proj|out_proj|proj|fc1|fc2|fc1_g|fc1_x|"
                        r"query|key|value|attn_proj|in_proj)$")
_NUMBERS = re.compile(r"(?<=\.)\d+(?=\.|$)")


# ---------------------------------------------------------------------------- weights metadata (no model)


def input_spec(cfg: Any) -> dict[str, Any] | None:
    """The card input spec for a pretrained config; None where timm's input is not a square image."""
    _, height, width = cfg.input_size
    if height != width:
        return None
    interpolation = cfg.interpolation if cfg.interpolation in INTERPOLATIONS else "bicubic"
    spec: dict[str, Any] = {"kind": "image", "size": int(height), "mean": [float(v) for v in cfg.mean],
                            "std": [float(v) for v in cfg.std], "interpolation": interpolation}
    crop_pct = cfg.crop_pct or 1.0
    resize = int(math.floor(height / crop_pct))
    if resize != height:
        spec["resize_size"] = resize
    return spec


def labels_for(cfg: Any, labels: dict[str, list[str]]) -> str | None:
    """The key of the label list timm ships for these weights (stored once in the file), or None."""
    from timm.data import ImageNetInfo, infer_imagenet_subset

    subset = infer_imagenet_subset(cfg)
    if not subset:
        return None
    if subset not in labels:
        info = ImageNetInfo(subset)
        labels[subset] = [info.index_to_description(i) for i in range(info.num_classes())]
    return subset if len(labels[subset]) == cfg.num_classes else None


def license_of(cfg: Any) -> str | None:
    name = cfg.license
    if not name or name == "unknown":
        return None
    return SPDX.get(name, name)


def weights_entry(cfg: Any, card_input: dict[str, Any] | None, labels: dict[str, list[str]],
                  num_params: int | None) -> dict[str, Any]:
    spec = input_spec(cfg)
    entry: dict[str, Any] = {
        "source": f"hf-hub:{cfg.hf_hub_id}",
        "filename": "model.safetensors",
        "num_classes": cfg.num_classes if cfg.num_classes else None,
        "labels": labels_for(cfg, labels) if cfg.num_classes else None,
        "license": license_of(cfg),
        "num_params": num_params,
        "input": spec if spec != card_input else None,
    }
    return {k: v for k, v in entry.items() if v is not None}


def hub_weights(arch: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The pretrained configs of `arch` that zoo can load (timm-format files on the Hub), by tag; and the
    tags left out, with why."""
    from timm.models import get_pretrained_cfg, list_pretrained

    found, left_out = {}, {}
    for full in list_pretrained(f"{arch}.*"):
        name, _, tag = full.partition(".")
        if name != arch:
            continue
        cfg = get_pretrained_cfg(full)
        if not cfg.hf_hub_id:
            left_out[tag] = "no Hub repo"
        elif not cfg.hf_hub_id.startswith(HUB_ORG) or cfg.hf_hub_filename or cfg.custom_load == "hf":
            left_out[tag] = "not a timm-format Hub repo"
        else:
            found[tag] = cfg
    return found, left_out


# ---------------------------------------------------------------------------- module tree (on meta)


def build_on_meta(arch: str, num_classes: int | None = None) -> Any:
    import timm
    import torch

    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    with torch.device("meta"):
        return timm.create_model(arch, pretrained=False, **kwargs)


def module_path(path: Any) -> str | None:
    """A pretrained config's module name (``classifier``, ``first_conv``): the first when it names several."""
    if isinstance(path, (list, tuple)):
        path = path[0] if path else None
    return path or None


def head_width(model: Any, head: str | None) -> int | None:
    """The width of the pooled features the head reads."""
    from torch import nn

    modules = dict(model.named_modules())
    layer = modules.get(head) if head else None
    if isinstance(layer, nn.Linear):
        return int(layer.in_features)
    if isinstance(layer, nn.Conv2d):
        return int(layer.in_channels)
    width = getattr(model, "head_hidden_size", None) or getattr(model, "num_features", None)
    return int(width) if isinstance(width, int) else None


def layer_groups(model: Any) -> list[str]:
    """timm's coarse parameter groups (``group_matcher``) as module prefixes, input side first.

    A prefix is the largest module whose parameters all lie in one group; parameters of the model
    itself (a class token) belong to no prefix and join the first group in zoo, as in timm.
    """
    from timm.models._manipulate import group_parameters

    groups = group_parameters(model, model.group_matcher(coarse=True))
    group_of = {name: i for i, names in enumerate(groups.values()) for name in names}
    params = [name for name, _ in model.named_parameters()]
    modules = dict(model.named_modules())
    spans: dict[str, set[int]] = {}
    for name in params:
        parts = name.split(".")
        for depth in range(1, len(parts)):
            spans.setdefault(".".join(parts[:depth]), set()).add(group_of[name])
    ordered: list[tuple[int, int, str]] = []
    seen: set[str] = set()
    for position, name in enumerate(params):
        parts = name.split(".")
        prefix = next((".".join(parts[:d]) for d in range(1, len(parts)) if len(spans[".".join(parts[:d])]) == 1),
                      None)
        if prefix is None or prefix in seen:
            continue
        if prefix not in modules:
            raise ValueError(f"group prefix {prefix!r} is not a module")
        seen.add(prefix)
        ordered.append((group_of[name], position, prefix))
    return [prefix for _, _, prefix in sorted(ordered)]


def lora_targets(model: Any, head: str | None) -> list[str]:
    """Wildcards over the attention and MLP projections (Linear layers outside the head)."""
    from torch import nn

    found: list[str] = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or (head and (name == head or name.startswith(head + "."))):
            continue
        if LORA_NAMES.search(name):
            pattern = _NUMBERS.sub("*", name)
            if pattern not in found:
                found.append(pattern)
    return found


def feature_stages(model: Any, cfg: Any) -> list[dict[str, Any]] | None:
    """The model's ``feature_info`` as card stages, each with the layout its module outputs (NCHW, NHWC or
    NLC tokens), measured with one forward pass on meta; None when any stage is unclear."""
    import torch

    info = getattr(model, "feature_info", None)
    if not info or not isinstance(info, (list, tuple)):
        return None
    modules = dict(model.named_modules())
    stages = [(str(f.get("module", "")), f.get("num_chs"), f.get("reduction")) for f in info]
    if any(m not in modules or not isinstance(c, int) or not isinstance(r, int) for m, c, r in stages):
        return None
    if len({m for m, _, _ in stages}) != len(stages):
        return None
    _, height, width = cfg.input_size
    outputs: dict[str, list[Any]] = {m: [] for m, _, _ in stages}

    def hook(name: str) -> Any:
        return lambda _module, _args, output: outputs[name].append(output)

    handles = [modules[m].register_forward_hook(hook(m)) for m, _, _ in stages]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, 3, height, width, device="meta"))
    except Exception:  # noqa: BLE001 - a model that cannot run on meta keeps its card, without stages
        return None
    finally:
        for handle in handles:
            handle.remove()
    found = []
    for module, channels, reduction in stages:
        if len(outputs[module]) != 1 or not isinstance(outputs[module][0], torch.Tensor):
            return None
        layout = _layout(tuple(outputs[module][0].shape), channels, reduction, height, width)
        if layout is None:
            return None
        stage: dict[str, Any] = {"module": module, "channels": channels, "reduction": reduction}
        if layout[0] != "NCHW":
            stage["layout"] = layout[0]
        if layout[1]:
            stage["prefix_tokens"] = layout[1]
        found.append(stage)
    return found


def _layout(shape: tuple[int, ...], channels: int, reduction: int, height: int, width: int) -> tuple[str, int] | None:
    grid = (math.ceil(height / reduction), math.ceil(width / reduction))
    if len(shape) == 4:
        nchw = shape[1] == channels and shape[2:] == grid
        nhwc = shape[3] == channels and shape[1:3] == grid
        if nchw != nhwc:
            return ("NCHW", 0) if nchw else ("NHWC", 0)
        return None
    if len(shape) == 3 and shape[2] == channels:
        prefix = shape[1] - grid[0] * grid[1]
        return ("NLC", prefix) if prefix >= 0 else None
    return None


def create_options(model: Any, cfg: Any) -> dict[str, dict[str, Any]]:
    """The create-time options the model's constructor takes by name, in zoo's spec format."""
    try:
        params = inspect.signature(type(model).__init__).parameters
    except (TypeError, ValueError):
        return {}
    options: dict[str, dict[str, Any]] = {}
    for name in ("drop_rate", "drop_path_rate", "global_pool"):
        if name in params:
            options[name] = {"keyword": name}
    names = {name for name, _ in model.named_parameters()}
    first_conv = module_path(cfg.first_conv)
    if "in_chans" in params and first_conv and f"{first_conv}.weight" in names:
        options["in_chans"] = {"keyword": "in_chans", "weight": f"{first_conv}.weight"}
    spec = _img_size_spec(model)
    if "img_size" in params and spec is not None:
        options["img_size"] = {"keyword": "img_size", **spec}
    return options


def _img_size_spec(model: Any) -> dict[str, Any] | None:
    """How a ViT-style model's learned position embedding is laid out, for resampling to a new input size."""
    import torch

    pos = getattr(model, "pos_embed", None)
    embed = getattr(model, "patch_embed", None)
    patch, grid = getattr(embed, "patch_size", None), getattr(embed, "grid_size", None)
    if not isinstance(pos, torch.Tensor) or pos.dim() != 3 or not isinstance(patch, (tuple, list)) \
            or not isinstance(grid, (tuple, list)):
        return None
    patch, grid = tuple(patch), tuple(grid)
    if len(patch) != 2 or patch[0] != patch[1] or len(grid) != 2:
        return None
    prefix = int(pos.shape[1]) - grid[0] * grid[1]
    if prefix < 0 or "pos_embed" not in {name for name, _ in model.named_parameters()}:
        return None
    return {"position_embedding": "pos_embed", "prefix_tokens": prefix, "patch_size": int(patch[0])}


# ---------------------------------------------------------------------------- one architecture


def inspect_architecture(arch: str) -> dict[str, Any]:
    """Everything the card of `arch` needs, measured on meta: ``{"card": ..., "notes": [...]}`` or
    ``{"error": ...}`` when the architecture cannot be built or inspected there. Runs in a worker process."""
    try:
        return _inspect(arch)
    except Exception as exc:  # noqa: BLE001 - recorded and counted by the caller
        return {"arch": arch, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}


def _inspect(arch: str) -> dict[str, Any]:
    from timm.models import get_pretrained_cfg

    try:
        cfg = get_pretrained_cfg(arch)
        weights_cfgs, left_out = hub_weights(arch)
        model = build_on_meta(arch)
    except Exception as exc:  # noqa: BLE001 - recorded and counted by the caller
        return {"arch": arch, "error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    notes: list[str] = [f"weights {tag}: {why}" for tag, why in left_out.items()]
    head = module_path(cfg.classifier) if cfg is not None else None
    modules = dict(model.named_modules())
    if head is not None and head not in modules:
        notes.append(f"head {head!r} is not a module")
        head = None
    params = sum(p.numel() for p in model.parameters())
    try:
        groups = layer_groups(model)
    except Exception as exc:  # noqa: BLE001 - the card keeps zoo's default groups
        notes.append(f"no layer groups ({type(exc).__name__})")
        groups = []
    if head and groups and not any(head == g or head.startswith(g + ".") for g in groups):
        groups.append(head)
    stages = feature_stages(model, cfg) if cfg is not None else None
    if stages is None:
        notes.append("no feature stages")
    params_by_classes = {c.num_classes: _params_with_classes(model, head, params, c.num_classes)
                         for c in weights_cfgs.values()}
    card: dict[str, Any] = {
        "arch": arch,
        "description": f"timm {arch}: {params / 1e6:.1f}M parameters, {head_width(model, head)}-d pooled features",
        "input": input_spec(cfg) if cfg is not None else None,
        "head": head,
        "layer_groups": groups,
        "num_features": head_width(model, head),
        "feature_stages": stages or [],
        "create_options": create_options(model, cfg) if cfg is not None else {},
        "extra": {"lora_targets": lora_targets(model, head)} if lora_targets(model, head) else {},
        "default_weights": cfg.tag if cfg is not None and cfg.tag in weights_cfgs else None,
        "weights": {tag: {"cfg": tag, "num_params": params_by_classes.get(c.num_classes)}
                    for tag, c in weights_cfgs.items()},
    }
    if card["default_weights"] is None and weights_cfgs:
        card["default_weights"] = next(iter(weights_cfgs))
    return {"arch": arch, "card": card, "notes": notes}


def _params_with_classes(model: Any, head: str | None, params: int, num_classes: int) -> int | None:
    """The parameter count with a head of `num_classes` (a Linear head: computed; otherwise unknown)."""
    from torch import nn

    layer = dict(model.named_modules()).get(head) if head else None
    if getattr(model, "num_classes", None) == num_classes:
        return params
    if not isinstance(layer, nn.Linear):
        return None
    old = sum(p.numel() for p in layer.parameters())
    return params - old + layer.in_features * num_classes + (num_classes if layer.bias is not None else 0)


# ---------------------------------------------------------------------------- the catalogue


def _finish(found: dict[str, Any], labels: dict[str, list[str]]) -> dict[str, Any]:
    """A worker's findings as a catalogue entry: weights metadata from the pretrained configs."""
    from timm.models import get_pretrained_cfg

    card = dict(found["card"])
    arch = card["arch"]
    weights = {}
    for tag, entry in card["weights"].items():
        cfg = get_pretrained_cfg(f"{arch}.{tag}")
        weights[tag] = weights_entry(cfg, card["input"], labels, entry["num_params"])
    card["weights"] = weights
    return {k: v for k, v in card.items() if v not in ({}, None, [])}


def _inspect_all(archs: list[str], workers: int) -> Iterable[dict[str, Any]]:
    if workers <= 1:
        return map(inspect_architecture, archs)
    pool = ProcessPoolExecutor(max_workers=workers)
    return pool.map(inspect_architecture, archs, chunksize=8)


def build_catalog(*, workers: int = 2, archs: list[str] | None = None, progress: bool = False) -> dict[str, Any]:
    """The whole catalogue as plain data (what catalog.json holds), and what was left out."""
    import timm

    labels: dict[str, list[str]] = {}
    cards, failed, notes = [], {}, {}
    names = archs if archs is not None else timm.list_models()
    for i, found in enumerate(_inspect_all(names, workers)):
        if progress and i % 100 == 0:
            print(f"  {i}/{len(names)} {found['arch']}", file=sys.stderr, flush=True)
        if "error" in found:
            failed[found["arch"]] = found["error"]
            continue
        cards.append(_finish(found, labels))
        if found["notes"]:
            notes[found["arch"]] = found["notes"]
    return {
        "format": FORMAT_VERSION,
        "generated_by": "python -m zoo_timm.generate",
        "timm": timm.__version__,
        "left_out": {"architectures": failed, "notes": notes},
        "labels": labels,
        "cards": sorted(cards, key=lambda c: c["arch"]),
    }


def render(catalog: dict[str, Any]) -> str:
    """Compact JSON: one line per card, so a diff shows which cards changed."""
    head = {k: v for k, v in catalog.items() if k != "cards"}
    body = ",\n".join(json.dumps(card, separators=(",", ":"), ensure_ascii=False) for card in catalog["cards"])
    text = json.dumps(head, separators=(",", ":"), ensure_ascii=False)
    return text[:-1] + ',"cards":[\n' + body + "\n]}\n"


def render_index(catalog_text: str) -> str:
    """``index.json`` for the catalogue whose file holds `catalog_text`: its summaries, one line per card, with
    the catalogue's size (checked when the index is read) and sha256 (checked by the tests)."""
    data = catalog_text.encode("utf-8")
    head = {"format": FORMAT_VERSION, "catalog_bytes": len(data), "catalog_sha256": hashlib.sha256(data).hexdigest()}
    body = ",\n".join(json.dumps(entry, separators=(",", ":"), ensure_ascii=False)
                      for entry in summaries(json.loads(catalog_text)))
    return json.dumps(head, separators=(",", ":"))[:-1] + ',"cards":[\n' + body + "\n]}\n"


def write_index(catalog_path: Path) -> Path:
    """Write the index beside the catalogue at `catalog_path`, from that file as it is."""
    path = catalog_path.with_name(INDEX_NAME)
    write_text_atomic(path, render_index(catalog_path.read_bytes().decode("utf-8")))
    return path


def summary(catalog: dict[str, Any]) -> str:
    cards = catalog["cards"]
    weights = sum(len(c.get("weights", {})) for c in cards)
    notes = catalog["left_out"]["notes"]
    without_stages = sum("no feature stages" in n for n in notes.values())
    left_weights = sum(n.startswith("weights ") for ns in notes.values() for n in ns)
    return (f"{len(cards)} cards, {weights} weights, timm {catalog['timm']}; left out: "
            f"{len(catalog['left_out']['architectures'])} architectures that do not build on meta, "
            f"{left_weights} weights not in timm's format on the Hub, feature stages of {without_stages} cards")


@functools.lru_cache(maxsize=1)
def installed_timm() -> str:
    import timm

    return str(timm.__version__)


def stale_reason(path: Path = CATALOG) -> str | None:
    """Why the file at `path` does not match the installed timm, or None when it does (a cheap check: the
    version the file was generated from, and the set of architectures and weights tags timm lists)."""
    import timm

    if not path.is_file():
        return f"{path} does not exist. Run: python -m zoo_timm.generate"
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("timm") != installed_timm():
        return (f"{path} was generated from timm {data.get('timm')}, but timm {installed_timm()} is installed "
                "(constraints.txt pins the version). Run: python -m zoo_timm.generate")
    listed = {c["arch"] for c in data["cards"]} | set(data["left_out"]["architectures"])
    missing = sorted(set(timm.list_models()) - listed)
    if missing:
        return f"{path} lacks architectures {missing[:10]}. Run: python -m zoo_timm.generate"
    tags = {f"{c['arch']}.{tag}" for c in data["cards"] for tag in c.get("weights", {})}
    tags |= {f"{arch}.{note.split()[1].rstrip(':')}" for arch, notes in data["left_out"]["notes"].items()
             for note in notes if note.startswith("weights ")}
    unknown = sorted(set(timm.list_pretrained()) - tags - {f"{a}.{t}" for a in data["left_out"]["architectures"]
                                                             for t in _tags(a)})
    if unknown:
        return f"{path} lacks pretrained weights {unknown[:10]}. Run: python -m zoo_timm.generate"
    return None


def _tags(arch: str) -> list[str]:
    import timm

    return [name.partition(".")[2] for name in timm.list_pretrained(f"{arch}.*") if name.partition(".")[0] == arch]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the catalogue is out of date")
    parser.add_argument("--output", type=Path, default=CATALOG)
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--index-only", action="store_true",
                        help=f"only rewrite {INDEX_NAME} from the existing catalogue (no timm needed)")
    args = parser.parse_args(argv)
    if args.check:
        reason = stale_reason(args.output)
        print(reason or f"{args.output} is up to date")
        return 1 if reason else 0
    if not args.index_only:
        catalog = build_catalog(workers=args.workers, progress=True)
        write_text_atomic(args.output, render(catalog))
        print(f"wrote {args.output}: {summary(catalog)}")
    print(f"wrote {write_index(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
