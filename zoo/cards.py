"""Model cards: what a model is, how to build it and where its weights live.

Cards are plain, validated, read-only data (nested mappings and lists are frozen), so a
card handed out by a lookup cannot change what later lookups see. Nothing here imports torch
or a plugin's model code, so listing and describing models stays fast. Every card can be
written to and read back from JSON (`to_dict` / `from_dict`), which is how saved models
remember what they are.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

from .errors import CardError, ZooError

MODALITIES = ("image", "text", "audio")
# Metrics `ModelCard.headline_metric` prefers, in this order, over the first a weights card lists.
HEADLINE_METRICS = ("acc@1", "top1", "accuracy")
# An optional namespace segment (``timm/``: lowercase letters, digits, '_' or '-'), then the name itself.
_NAME = re.compile(r"^(?:[a-z0-9][a-z0-9_\-]*/)?[A-Za-z][A-Za-z0-9_\-]*$")
_TASK = re.compile(r"[a-z][a-z0-9\-]*")
_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
_BUILDER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_INTERPOLATIONS = ("nearest", "bilinear", "bicubic")


_T = TypeVar("_T")


def _fail(owner: str, field_name: str, problem: str) -> CardError:
    return CardError(f"{owner}: field {field_name!r} {problem}", field=field_name)


def _check_type(owner: str, name: str, value: Any, types: type | tuple[type, ...], *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if type(value) is bool:  # bool cannot be subclassed: the same as isinstance(value, bool), for less
        if bool not in (types if isinstance(types, tuple) else (types,)):
            raise _fail(owner, name, f"must be {_type_names(types)}, got {value!r}")
    elif not isinstance(value, types):
        raise _fail(owner, name, f"must be {_type_names(types)}, got {type(value).__name__} {value!r}")


def _type_names(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return " or ".join(t.__name__ for t in types)


class FrozenDict(dict[Any, Any]):
    """A dict that refuses changes: the mappings of a card handed out by the registry.

    Every lookup shares one card, so changing ``card.defaults`` in place would change what
    later `zoo.create` calls build. A dict subclass (not `types.MappingProxyType`) so cards
    still pickle, deep-copy (models carrying a card) and dump to JSON.
    """

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise CardError("card fields are read-only (every lookup shares the card); make a changed copy with "
                        "dataclasses.replace(card, defaults={**card.defaults, 'key': value})")

    __setitem__ = __delitem__ = __ior__ = clear = _refuse  # type: ignore[assignment]
    pop = popitem = setdefault = update = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[type, tuple[dict[Any, Any]]]:
        return (FrozenDict, (dict(self),))


class FrozenList(list[Any]):
    """A list that refuses changes (and still equals the plain list it was made from)."""

    _refuse = FrozenDict._refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse  # type: ignore[assignment]
    append = clear = extend = insert = pop = remove = reverse = sort = _refuse

    def __reduce__(self) -> tuple[type, tuple[list[Any]]]:
        return (FrozenList, (list(self),))


# Values that are immutable themselves: `_freeze` returns them, and a container holding only these is copied
# in one step. Exact types (a subclass of str could be anything), compared with `type(value)`.
_ATOMS = frozenset({str, int, float, bool, type(None)})


def _freeze(value: Any) -> Any:
    """A read-only deep copy: mappings become `FrozenDict`, lists `FrozenList`, tuples stay tuples.

    Cards of a generated catalogue hold thousands of small mappings and lists of plain values (metrics,
    builder defaults, label lists): those are recognised by their items' exact types and copied whole.
    """
    kind = type(value)
    if kind in _ATOMS:
        return value
    if kind is dict or kind is FrozenDict:
        if _ATOMS.issuperset(map(type, value.values())):
            return FrozenDict(value)
        return FrozenDict({key: _freeze(item) for key, item in value.items()})
    if kind is list or kind is FrozenList or kind is tuple:
        if _ATOMS.issuperset(map(type, value)):
            return value if kind is tuple else FrozenList(value)
        return tuple(map(_freeze, value)) if kind is tuple else FrozenList(map(_freeze, value))
    if isinstance(value, Mapping):
        return FrozenDict({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, list):
        return FrozenList(_freeze(item) for item in value)
    if isinstance(value, tuple):
        return tuple(_freeze(item) for item in value)
    return value


def _all_strings(values: Sequence[Any]) -> bool:
    """Whether every item is a str: by exact type in one C-level pass (label lists have thousands of names),
    item by item only when some item is not exactly a str (a str subclass still passes)."""
    return {str}.issuperset(map(type, values)) or all(isinstance(v, str) for v in values)


def _number_triple(owner: str, name: str, value: Any) -> tuple[float, ...]:
    if type(value) in (list, tuple) and len(value) == 3 and {float, int}.issuperset(map(type, value)):
        return tuple(map(float, value))  # the usual three plain numbers, checked by exact type in one pass
    if not isinstance(value, (list, tuple)) or len(value) != 3 or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
    ):
        raise _fail(owner, name, f"must be three numbers (one per RGB channel), got {value!r}")
    return tuple(float(v) for v in value)


# ---------------------------------------------------------------------------- input specs


@dataclass(frozen=True)
class ImageInput:
    """How images are prepared: resize to `resize_size`, center-crop to `size`, normalize."""

    size: int
    """Side of the square the model sees, in pixels (the center crop)."""
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    """Per-channel mean (RGB, 0-1 scale) subtracted before the model."""
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    """Per-channel standard deviation (RGB) divided by after subtracting `mean`."""
    resize_size: int | None = None
    """Shorter side to resize to before cropping; None: resize straight to `size`."""
    interpolation: str = "bilinear"
    """Resize filter: ``nearest``, ``bilinear`` or ``bicubic``."""
    kind: str = field(default="image", init=False)
    """Always ``image``; written to JSON so a spec reads back as the right class."""

    def __post_init__(self) -> None:
        _check_type("ImageInput", "size", self.size, int)
        if self.size <= 0:
            raise _fail("ImageInput", "size", f"must be positive, got {self.size}")
        object.__setattr__(self, "mean", _number_triple("ImageInput", "mean", self.mean))
        object.__setattr__(self, "std", _number_triple("ImageInput", "std", self.std))
        _check_type("ImageInput", "resize_size", self.resize_size, int, optional=True)
        if self.interpolation not in _INTERPOLATIONS:
            raise _fail("ImageInput", "interpolation", f"must be one of {_INTERPOLATIONS}, got {self.interpolation!r}")


@dataclass(frozen=True)
class TextInput:
    """How text is prepared: which tokenizer, how long a sequence may be."""

    max_length: int = 512
    """Most tokens per sequence (longer texts are cut)."""
    tokenizer: str | None = None
    """Where the tokenizer comes from (a Hub repo id or a file the family reads); None: the family's default."""
    lowercase: bool = False
    """Whether texts are lowercased before tokenizing (uncased checkpoints)."""
    kind: str = field(default="text", init=False)
    """Always ``text``; written to JSON so a spec reads back as the right class."""

    def __post_init__(self) -> None:
        _check_type("TextInput", "max_length", self.max_length, int)
        _check_type("TextInput", "tokenizer", self.tokenizer, str, optional=True)
        _check_type("TextInput", "lowercase", self.lowercase, bool)


@dataclass(frozen=True)
class AudioInput:
    """How audio is prepared: resampled to `sample_rate`, mixed to mono, cut or padded to a clip."""

    sample_rate: int
    """Samples per second the model expects; audio is resampled to it."""
    clip_seconds: float | None = None
    """Length clips are cut or padded to; None: whole clips."""
    mono: bool = True
    """Whether channels are mixed down to one."""
    kind: str = field(default="audio", init=False)
    """Always ``audio``; written to JSON so a spec reads back as the right class."""

    def __post_init__(self) -> None:
        _check_type("AudioInput", "sample_rate", self.sample_rate, int)
        if self.sample_rate <= 0:
            raise _fail("AudioInput", "sample_rate", f"must be positive, got {self.sample_rate}")
        _check_type("AudioInput", "clip_seconds", self.clip_seconds, (int, float), optional=True)
        _check_type("AudioInput", "mono", self.mono, bool)


InputSpec = ImageInput | TextInput | AudioInput
_INPUT_KINDS: dict[str, type[InputSpec]] = {"image": ImageInput, "text": TextInput, "audio": AudioInput}


def input_from_dict(data: InputSpec | Mapping[str, Any] | None, *, modality: str | None = None) -> InputSpec | None:
    """Turn a plain mapping (as written in JSON) into the input spec for its modality."""
    if data is None or isinstance(data, (ImageInput, TextInput, AudioInput)):
        return data
    if not isinstance(data, Mapping):
        raise CardError(f"field 'input' must be a mapping or an input spec, got {data!r}", field="input")
    values = dict(data)
    kind = values.pop("kind", None) or modality
    if kind not in _INPUT_KINDS:
        raise CardError(f"field 'input' needs a 'kind' among {tuple(_INPUT_KINDS)}, got {kind!r}", field="input")
    try:
        return _INPUT_KINDS[kind](**values)
    except TypeError as exc:
        raise CardError(f"field 'input' is malformed for {kind}: {exc}", field="input") from None


# ---------------------------------------------------------------------------- weights


class _PlainData:
    """`from_dict` and `to_dict` for the card dataclasses: the JSON form, checked like the constructor."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return _from_dict(cls, data, cls.__name__)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _to_dict(self)
        return data


@dataclass(frozen=True)
class WeightsCard(_PlainData):
    """One set of pretrained weights for a model.

    `source` is where the file lives: ``hf-hub:org/repo`` (with `filename` and
    `revision`), an ``https://`` URL, ``package:PKG/path`` (shipped inside an installed
    package, such as the plugin's own), or a local path. `sha256` is the full hex
    digest or a prefix of it (torchvision puts an 8+ digit prefix in its file names).
    `key_map` names a ``"module:function"`` that renames a checkpoint's keys to the
    module's, for checkpoints written by another implementation.
    """

    source: str
    """Where the file is: ``hf-hub:org/repo[@revision]``, an ``https://`` URL, ``package:PKG/path`` (a file
    shipped inside an installed package) or a local path."""
    filename: str | None = None
    """The file in a Hub repo (default ``model.safetensors``), or the name to save a URL's file under."""
    revision: str | None = None
    """A Hub branch, tag or commit; pin a commit for weights that must not change."""
    sha256: str | None = None
    """Hex digest of the file, or a prefix of 6+ digits; every file is checked against it before use."""
    num_classes: int | None = None
    """Outputs of the head in this file; None for a file without a classifier (features only)."""
    labels: tuple[str, ...] | None = None
    """Class names in output order (as many as `num_classes`)."""
    license: str | None = None
    """SPDX identifier of the weights' licence (``BSD-3-Clause``, ``CC-BY-NC-4.0``, ...)."""
    metrics: Mapping[str, float] = field(default_factory=dict)
    """Published results, e.g. ``{"acc@1": 80.9}``."""
    num_params: int | None = None
    """Parameters in the checkpoint."""
    gflops: float | None = None
    """Billions of floating-point operations for one input at the weights' input size (as published)."""
    file_size: int | None = None
    """Exact size in bytes; a download longer than this is cut off."""
    input: InputSpec | None = None
    """Preprocessing these weights expect, when it differs from the card's `input`."""
    key_map: str | None = None
    """``"package.module:function"`` renaming the file's keys to the module's (another implementation's file)."""
    description: str = ""
    """Notes on how the weights were trained."""

    def __post_init__(self) -> None:
        owner = "WeightsCard"
        _check_type(owner, "source", self.source, str)
        if not self.source:
            raise _fail(owner, "source", "must not be empty")
        for name in ("filename", "revision", "license", "key_map"):
            _check_type(owner, name, getattr(self, name), str, optional=True)
        if self.sha256 is not None:
            _check_type(owner, "sha256", self.sha256, str)
            if not re.fullmatch(r"[0-9a-f]{6,64}", self.sha256):
                raise _fail(owner, "sha256", f"must be 6 to 64 lowercase hex digits, got {self.sha256!r}")
        _check_type(owner, "num_classes", self.num_classes, int, optional=True)
        if self.labels is not None:
            if not isinstance(self.labels, (list, tuple)) or not _all_strings(self.labels):
                raise _fail(owner, "labels", "must be a list of strings")
            object.__setattr__(self, "labels", tuple(self.labels))
            if self.num_classes is not None and len(self.labels) != self.num_classes:
                raise _fail(owner, "labels", f"has {len(self.labels)} names but num_classes is {self.num_classes}")
        _check_type(owner, "metrics", self.metrics, Mapping)
        object.__setattr__(self, "metrics", _freeze(self.metrics))
        _check_type(owner, "num_params", self.num_params, int, optional=True)
        if self.gflops is not None:
            if isinstance(self.gflops, bool) or not isinstance(self.gflops, (int, float)) or self.gflops < 0:
                raise _fail(owner, "gflops", f"must be a number of at least 0, got {self.gflops!r}")
            object.__setattr__(self, "gflops", float(self.gflops))
        _check_type(owner, "file_size", self.file_size, int, optional=True)
        if self.key_map is not None and not _BUILDER.match(self.key_map):
            raise _fail(owner, "key_map", f"must be 'package.module:function', got {self.key_map!r}")
        object.__setattr__(self, "input", input_from_dict(self.input))



# ---------------------------------------------------------------------------- feature stages


FEATURE_LAYOUTS = ("NCHW", "NHWC", "NLC")
"""The tensor layouts a `FeatureStage` module may output."""

ARCHITECTURE_OPTIONS = ("drop_rate", "drop_path_rate", "global_pool", "in_chans", "img_size")
"""The architecture options of `zoo.create` a card maps in `ModelCard.create_options` (``checkpoint_path``,
``device`` and ``dtype`` need no card data: every model takes them)."""


@dataclass(frozen=True)
class FeatureStage(_PlainData):
    """One feature map an image model offers to ``zoo.create(name, features_only=True)`` (timm's `feature_info`).

    `module` is the dotted path of the module whose output is the map, `channels` its channel count and
    `reduction` how many input pixels one of its pixels spans (the stride from the input: 2, 4, 8, ...).
    """

    module: str
    """Dotted path of the module whose output is the feature map (timm's ``module``); `zoo.create` checks it."""
    channels: int
    """Channels of the map (timm's ``num_chs``)."""
    reduction: int
    """Stride of the map from the input, e.g. 4 for a map a quarter of the input's side (timm's ``reduction``)."""
    layout: str = "NCHW"
    """What the module outputs: ``NCHW`` maps, ``NHWC`` maps (Swin), or ``NLC`` token sequences (a ViT's
    encoder layers, a text or speech encoder's hidden states). Image models' maps are returned as ``NCHW``."""
    prefix_tokens: int = 0
    """For ``NLC`` stages of an image model: leading tokens (class, register) dropped before the tokens are
    laid out on the patch grid."""

    def __post_init__(self) -> None:
        if (type(self.module) is str and self.module and type(self.channels) is int and self.channels > 0
                and type(self.reduction) is int and self.reduction > 0 and type(self.layout) is str
                and self.layout in FEATURE_LAYOUTS and type(self.prefix_tokens) is int and self.prefix_tokens >= 0):
            return  # a well-formed stage, checked in one go (catalogues hold thousands); else say what is wrong
        _check_type("FeatureStage", "module", self.module, str)
        if not self.module:
            raise _fail("FeatureStage", "module", "must not be empty")
        for name in ("channels", "reduction"):
            _check_type("FeatureStage", name, getattr(self, name), int)
            if getattr(self, name) <= 0:
                raise _fail("FeatureStage", name, f"must be positive, got {getattr(self, name)}")
        if self.layout not in FEATURE_LAYOUTS:
            raise _fail("FeatureStage", "layout", f"must be one of {FEATURE_LAYOUTS}, got {self.layout!r}")
        _check_type("FeatureStage", "prefix_tokens", self.prefix_tokens, int)
        if self.prefix_tokens < 0:
            raise _fail("FeatureStage", "prefix_tokens", f"must not be negative, got {self.prefix_tokens}")


# ---------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class Recipe(_PlainData):
    """A name for another model plus the options `zoo.create` should use.

    `model` is a registered name, optionally with a weights tag (``resnet50.imagenet1k_v2``).
    `options` are `create` keywords (``pretrained``, ``freeze``, builder keywords ...);
    `required` are keywords the user must give (``num_classes`` for a fine-tune recipe).
    """

    name: str
    """The recipe's name, listed and created like a model's."""
    model: str
    """The registered model it builds, optionally with a weights tag (``resnet50.imagenet1k_v2``)."""
    description: str = ""
    """One line for `zoo list` and `zoo info`."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """`zoo.create` keywords it applies (``pretrained``, ``freeze``, builder keywords); the caller's win."""
    required: Sequence[str] = ()
    """Keywords the caller must give (``num_classes`` for a fine-tune recipe)."""

    def __post_init__(self) -> None:
        _check_name("Recipe", self.name)
        _check_type(f"Recipe {self.name!r}", "model", self.model, str)
        _check_type(f"Recipe {self.name!r}", "description", self.description, str)
        _check_type(f"Recipe {self.name!r}", "options", self.options, Mapping)
        object.__setattr__(self, "options", _freeze(self.options))
        object.__setattr__(self, "required", tuple(self.required))



# ---------------------------------------------------------------------------- model cards


def _check_name(owner: str, name: Any) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise CardError(
            f"{owner}: field 'name' must start with a letter and hold only letters, digits, '_' or '-'"
            f" (no '.', which separates a weights tag), after at most one namespace such as 'timm/'"
            f" (lowercase letters, digits, '_' or '-', then '/'), got {name!r}",
            field="name",
        )


@dataclass(frozen=True)
class ModelCard(_PlainData):
    """Everything zoo knows about a model without building it.

    `builder` is ``"package.module:function"``; it is imported only by `zoo.create`.
    `head` is the dotted path of the classifier module; `layer_groups` are module
    prefixes from the input side to the head, used for freezing and layer-wise rates.
    `weights` maps tags to `WeightsCard`; `default_weights` is the tag `pretrained=True` uses.
    `num_features` is the width of the pooled features the head reads; `num_classes`
    is what the built model outputs when that differs from the builder's default
    (set on the card a created model carries; 0 means the head was removed).
    `recipe` is set on cards derived from a `Recipe` and names what they came from.
    """

    name: str
    """Registered name: an optional namespace (``timm/``: lowercase letters, digits, ``_`` or ``-``, then ``/``), then a
    letter, then letters, digits, ``_`` or ``-`` (``.`` separates a weights tag)."""
    builder: str
    """``"package.module:function"`` returning the ``nn.Module``; imported only by `zoo.create`."""
    task: str
    """Hugging Face task name: ``image-classification``, ``automatic-speech-recognition``, ..."""
    modality: str
    """``image``, ``text`` or ``audio``."""
    family: str | None = None
    """Architecture family, for ``zoo list --family``."""
    description: str = ""
    """One line for `zoo list`, `zoo info` and torch.hub's help."""
    defaults: Mapping[str, Any] = field(default_factory=dict)
    """Builder keywords every build gets; the caller's keywords win."""
    input: InputSpec | None = None
    """How inputs are prepared (`ImageInput`, `TextInput` or `AudioInput`); `zoo.testing` makes inputs from it."""
    head: str | None = None
    """Dotted path of the classifier module; `zoo.create` checks the built model has it."""
    layer_groups: Sequence[str] = ()
    """Module prefixes from the input side to the head, for freezing and layer-wise rates; each must be a module."""
    weights: Mapping[str, WeightsCard] = field(default_factory=dict)
    """Weights tag to `WeightsCard`; ``name.tag`` picks one."""
    default_weights: str | None = None
    """The tag ``pretrained=True`` loads."""
    num_features: int | None = None
    """Width of the pooled features the head reads (what ``num_classes=0`` returns)."""
    num_classes: int | None = None
    """Outputs of the built model when they differ from the builder's default (0: head removed); set by zoo."""
    aliases: Sequence[str] = ()
    """Other names that find this card."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Family-specific data (JSON values), e.g. ``lora_targets``, ``builder_weights``; ``head_companions``: module
    paths built fresh with the head but beside it (a pooler), loaded, frozen and trained as the head is."""
    recipe: Recipe | None = None
    """The recipe a card was derived from; set by zoo."""
    feature_stages: Sequence[FeatureStage] = ()
    """Feature maps from the input side on (`FeatureStage`: module, channels, reduction), what
    ``zoo.create(name, features_only=True, out_indices=...)`` returns; empty: the model offers none."""
    create_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """How the model honours `zoo.create`'s architecture options (keys from `ARCHITECTURE_OPTIONS`: ``drop_rate``,
    ``drop_path_rate``, ``global_pool``, ``in_chans``, ``img_size``), each mapped to its family's spec (JSON
    values, read by `zoo.create_options`); an option not listed is refused for this model."""

    def __post_init__(self) -> None:
        _check_name("ModelCard", self.name)
        owner = f"ModelCard {self.name!r}"
        _check_type(owner, "builder", self.builder, str)
        if not _BUILDER.match(self.builder):
            raise _fail(owner, "builder", f"must be 'package.module:function', got {self.builder!r}")
        _check_task_and_modality(owner, self.task, self.modality)
        _check_type(owner, "family", self.family, str, optional=True)
        _check_type(owner, "description", self.description, str)
        _check_type(owner, "defaults", self.defaults, Mapping)
        object.__setattr__(self, "defaults", _freeze(self.defaults))
        _check_type(owner, "head", self.head, str, optional=True)
        if not isinstance(self.layer_groups, (list, tuple)) or not _all_strings(self.layer_groups):
            raise _fail(owner, "layer_groups", f"must be a list of module prefixes, got {self.layer_groups!r}")
        object.__setattr__(self, "layer_groups", tuple(self.layer_groups))
        spec = _wrap(owner, "input", lambda: input_from_dict(self.input, modality=self.modality))
        object.__setattr__(self, "input", spec)
        _check_type(owner, "weights", self.weights, Mapping)
        weights = {}
        for tag, card in self.weights.items():
            if not isinstance(tag, str) or not _TAG.match(tag):
                raise _fail(owner, "weights", f"has a malformed tag {tag!r} (letters, digits, '_' or '-')")
            weights[tag] = card if isinstance(card, WeightsCard) else _wrap(
                owner, f"weights[{tag!r}]", lambda c=card: WeightsCard.from_dict(c)
            )
        object.__setattr__(self, "weights", FrozenDict(weights))
        if self.default_weights is not None and self.default_weights not in self.weights:
            raise _fail(owner, "default_weights",
                        f"names {self.default_weights!r}, which is not among weights {sorted(self.weights)}")
        _check_type(owner, "num_features", self.num_features, int, optional=True)
        _check_type(owner, "num_classes", self.num_classes, int, optional=True)
        if not isinstance(self.aliases, (list, tuple)):
            raise _fail(owner, "aliases", f"must be a list of names, got {self.aliases!r}")
        for alias in self.aliases:
            _check_name(f"{owner} alias", alias)
        object.__setattr__(self, "aliases", tuple(self.aliases))
        _check_type(owner, "extra", self.extra, Mapping)
        object.__setattr__(self, "extra", _freeze(self.extra))
        if self.recipe is not None and not isinstance(self.recipe, Recipe):
            object.__setattr__(self, "recipe", _wrap(owner, "recipe", lambda: Recipe.from_dict(self.recipe)))
        object.__setattr__(self, "feature_stages", _feature_stages(owner, self.feature_stages))
        _check_type(owner, "create_options", self.create_options, Mapping)
        unknown = sorted(set(self.create_options) - set(ARCHITECTURE_OPTIONS))
        if unknown:
            raise _fail(owner, "create_options", f"names unknown option(s) {unknown}; known: {ARCHITECTURE_OPTIONS}")
        for option, mapping in self.create_options.items():
            if not isinstance(mapping, Mapping):
                raise _fail(owner, "create_options", f"[{option!r}] must be a mapping, got {mapping!r}")
        object.__setattr__(self, "create_options", _freeze(self.create_options))

    @property
    def has_weights(self) -> bool:
        """True when the card has at least one set of weights."""
        return bool(self.weights)

    @property
    def pretrained(self) -> bool:
        """Deprecated spelling of `has_weights` (it reads like ``create(pretrained=)``, which loads them)."""
        warnings.warn("ModelCard.pretrained is deprecated; use ModelCard.has_weights", DeprecationWarning,
                      stacklevel=2)
        return self.has_weights

    def classes(self, tag: str | None = None) -> int | None:
        """Deprecated spelling of `class_count` (it returns a count, not the classes)."""
        warnings.warn("ModelCard.classes() is deprecated; use ModelCard.class_count()", DeprecationWarning,
                      stacklevel=2)
        return self.class_count(tag)

    def class_count(self, tag: str | None = None) -> int | None:
        """Classes the model outputs: `num_classes`, else the builder default, else the weights'."""
        if self.num_classes is not None:
            return self.num_classes
        if "num_classes" in self.defaults:
            return int(self.defaults["num_classes"])
        tag = tag or self.default_weights
        return self.weights[tag].num_classes if tag is not None and tag in self.weights else None

    def headline_metric(self, tag: str | None = None) -> tuple[str, float] | None:
        """The weights' main published result: ``("acc@1", 80.858)`` when they have ``acc@1``, else their first
        metric; None for a card without weights or weights without metrics. `tag` defaults to `default_weights`."""
        tag = tag or self.default_weights
        if tag is None or tag not in self.weights:
            return None
        metrics = self.weights[tag].metrics
        for key in (*HEADLINE_METRICS, *metrics):
            if key in metrics:
                return key, float(metrics[key])
        return None

    def input_for(self, tag: str | None = None) -> InputSpec | None:
        """The input spec for one set of weights (weights may override the card's)."""
        tag = tag or self.default_weights
        if tag and tag in self.weights and self.weights[tag].input is not None:
            return self.weights[tag].input
        return self.input



def _check_task_and_modality(owner: str, task: Any, modality: Any) -> None:
    _check_type(owner, "task", task, str)
    if not _TASK.fullmatch(task):
        raise _fail(owner, "task", f"must be a Hugging Face task name such as 'image-classification', got {task!r}")
    if modality not in MODALITIES:
        raise _fail(owner, "modality", f"must be one of {MODALITIES}, got {modality!r}")


# ---------------------------------------------------------------------------- summaries (what a listing reads)


@dataclass(frozen=True)
class WeightsSummary(_PlainData):
    """What `zoo list` shows and filters on of one set of weights; the fields mean what `WeightsCard`'s do."""

    num_params: int | None = None
    gflops: float | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    license: str | None = None

    def __post_init__(self) -> None:
        owner = "WeightsSummary"
        _check_type(owner, "num_params", self.num_params, int, optional=True)
        if self.gflops is not None:
            _check_type(owner, "gflops", self.gflops, (int, float))
            object.__setattr__(self, "gflops", float(self.gflops))
        _check_type(owner, "metrics", self.metrics, Mapping)
        object.__setattr__(self, "metrics", _freeze(self.metrics))
        _check_type(owner, "license", self.license, str, optional=True)

    @classmethod
    def of(cls, weights: WeightsCard) -> WeightsSummary:
        return cls(weights.num_params, weights.gflops, weights.metrics, weights.license)


@dataclass(frozen=True)
class CardSummary(_PlainData):
    """The part of a `ModelCard` that listing models reads: names, filters and the figures `zoo list` shows.

    A plugin with a large generated catalogue registers one per card (``Registrar.register_catalogue``)
    and the full card is built only when something asks for it. `recipe` is set by zoo on the summary
    of a recipe's name, as on its card.
    """

    name: str
    task: str
    modality: str
    family: str | None = None
    aliases: Sequence[str] = ()
    weights: Mapping[str, WeightsSummary] = field(default_factory=dict)
    default_weights: str | None = None
    recipe: Recipe | None = None

    def __post_init__(self) -> None:
        _check_name("CardSummary", self.name)
        owner = f"CardSummary {self.name!r}"
        _check_task_and_modality(owner, self.task, self.modality)
        _check_type(owner, "family", self.family, str, optional=True)
        if not isinstance(self.aliases, (list, tuple)):
            raise _fail(owner, "aliases", f"must be a list of names, got {self.aliases!r}")
        for alias in self.aliases:
            _check_name(f"{owner} alias", alias)
        object.__setattr__(self, "aliases", tuple(self.aliases))
        _check_type(owner, "weights", self.weights, Mapping)
        weights = {}
        for tag, summary in self.weights.items():
            if not isinstance(tag, str) or not _TAG.match(tag):
                raise _fail(owner, "weights", f"has a malformed tag {tag!r} (letters, digits, '_' or '-')")
            if not isinstance(summary, WeightsSummary):
                try:
                    summary = WeightsSummary.from_dict(summary)
                except CardError as exc:
                    raise CardError(f"{owner}: {exc}", field=f"weights[{tag!r}]") from None
            weights[tag] = summary
        object.__setattr__(self, "weights", FrozenDict(weights))
        if self.default_weights is not None and self.default_weights not in self.weights:
            raise _fail(owner, "default_weights",
                        f"names {self.default_weights!r}, which is not among weights {sorted(self.weights)}")
        if self.recipe is not None and not isinstance(self.recipe, Recipe):
            raise _fail(owner, "recipe", f"must be a zoo.Recipe, got {self.recipe!r}")

    @classmethod
    def of(cls, card: ModelCard) -> CardSummary:
        """The summary of a card: what listing it reads."""
        weights = {tag: WeightsSummary.of(w) for tag, w in card.weights.items()}
        return cls(card.name, card.task, card.modality, card.family, card.aliases, weights, card.default_weights,
                   card.recipe)


def _feature_stages(owner: str, stages: Any) -> tuple[FeatureStage, ...]:
    """The `ModelCard.feature_stages` given as stages or plain mappings (as in JSON), checked."""
    if not isinstance(stages, (list, tuple)):
        raise _fail(owner, "feature_stages", f"must be a list of feature stages, got {stages!r}")
    checked: list[FeatureStage] = []
    if {FeatureStage}.issuperset(map(type, stages)):  # a card's own stages, handed on by dataclasses.replace
        checked = list(stages)
    else:
        for i, stage in enumerate(stages):  # no _wrap per stage: a catalogue has thousands of them
            if not isinstance(stage, FeatureStage):
                try:
                    stage = FeatureStage.from_dict(stage)
                except CardError as exc:
                    raise CardError(f"{owner}: {exc}", field=f"feature_stages[{i}]") from None
            checked.append(stage)
    modules = [stage.module for stage in checked]
    if len(set(modules)) != len(modules):
        repeated = sorted({m for m in modules if modules.count(m) > 1})
        raise _fail(owner, "feature_stages", f"names module(s) {repeated} more than once")
    return tuple(checked)


def _wrap(owner: str, field_name: str, make: Callable[[], _T]) -> _T:
    try:
        return make()
    except CardError as exc:
        raise CardError(f"{owner}: {exc}", field=field_name) from None


@functools.cache
def _init_fields(cls: type) -> tuple[frozenset[str], frozenset[str]]:
    """The names a card class's constructor takes, and those without a default (read once per class)."""
    fields = [f for f in dataclasses.fields(cls) if f.init]
    required = frozenset(f.name for f in fields
                         if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    return frozenset(f.name for f in fields), required


def _from_dict(cls: type[_T], data: Mapping[str, Any], owner: str) -> _T:
    if type(data) is not dict and not isinstance(data, Mapping):
        raise CardError(f"{owner} must be given as a mapping, got {type(data).__name__}")
    names, required = _init_fields(cls)  # type: ignore[arg-type]
    if not names.issuperset(data):
        unknown = sorted(set(data) - names)
        raise CardError(f"{owner}: unknown field(s) {unknown}; known fields are {sorted(names)}", field=unknown[0])
    if not required.issubset(data):
        missing = sorted(required.difference(data))
        raise CardError(f"{owner}: missing required field(s) {missing}", field=missing[0])
    return cls(**data)


# Defaults the JSON form leaves out, so plain NCHW stages read as before.
_LEFT_OUT_DEFAULTS: dict[tuple[str, str], Any] = {("FeatureStage", "layout"): "NCHW",
                                                  ("FeatureStage", "prefix_tokens"): 0}


def _to_dict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            empty = value is None or (isinstance(value, (str, tuple, list, Mapping)) and not value)
            key = (type(obj).__name__, f.name)
            if f.name != "kind" and (empty or (key in _LEFT_OUT_DEFAULTS and _LEFT_OUT_DEFAULTS[key] == value)):
                continue  # omit unset optional fields: cards read back the same
            out[f.name] = _to_dict(value)
        return out
    if isinstance(obj, Mapping):
        return {k: _to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_dict(v) for v in obj]
    return obj


# ---------------------------------------------------------------------------- a card on a module

CARD_ATTRIBUTE = "zoo_card"


def attach_card(model: Any, card: ModelCard) -> None:
    """Attach a card to a module (a plain attribute: not a parameter, buffer or submodule)."""
    object.__setattr__(model, CARD_ATTRIBUTE, card)


def card_of(model: Any) -> ModelCard:
    """The card a zoo-created module carries."""
    card = getattr(model, CARD_ATTRIBUTE, None)
    if not isinstance(card, ModelCard):
        raise ZooError(f"this {type(model).__name__} carries no zoo card; create it with zoo.create(...) "
                       "or attach one with zoo.cards.attach_card(model, card)")
    return card


def card_or_none(model: Any) -> ModelCard | None:
    """The card `model` carries, or None for a module zoo did not create (the trainer trains any module)."""
    card = getattr(model, CARD_ATTRIBUTE, None)
    return card if isinstance(card, ModelCard) else None


def card_labels(card: ModelCard) -> list[str] | None:
    """The class names a model with this card predicts, in output order; None when the card does not say.

    A saved or fine-tuned model records them as ``extra["labels"]``; otherwise they are the default
    weights' labels, as long as the model still outputs those weights' classes (a new head does not).
    """
    if card.extra.get("labels"):
        return list(card.extra["labels"])
    weights = card.weights.get(card.default_weights) if card.default_weights else None
    if weights is None or not weights.labels or len(weights.labels) != card.class_count():
        return None
    return list(weights.labels)


# ---------------------------------------------------------------------------- the field reference (docs/cards.md)

REFERENCE_COMMAND = "python -c 'import zoo.cards as c; print(c.field_reference(), end=\"\")' > docs/cards.md"


def field_reference() -> str:
    """The text of docs/cards.md: each field of the card classes with its type, default and docstring.

    Read from the dataclasses and their field docstrings, so the page cannot drift from the code;
    regenerate it with `REFERENCE_COMMAND` (a test fails when it is stale).
    """
    docs = _field_docstrings()
    lines = ["# Card fields", "",
             "Every field of the classes a plugin registers, generated from `zoo/cards.py` (do not edit: run",
             f"`{REFERENCE_COMMAND}`). What the fields are for, and a whole plugin,",
             "are in [plugins.md](plugins.md). Fields are checked when a card is made; `head` and",
             "`layer_groups` are checked against the built model by `zoo.create`, and the rest by",
             "`zoo.testing.check_plugin`."]
    for cls in (ModelCard, WeightsCard, Recipe, FeatureStage, ImageInput, TextInput, AudioInput):
        summary = " ".join((cls.__doc__ or "").split("\n\n")[0].split())
        lines += ["", f"## `zoo.{cls.__name__}`", "", summary, "", "| field | type | default | meaning |",
                  "|---|---|---|---|"]
        for item in dataclasses.fields(cls):
            kind = str(item.type).replace("|", "\\|")
            meaning = docs[cls.__name__].get(item.name, "")
            lines.append(f"| `{item.name}` | `{kind}` | {_default_text(item)} | {meaning} |")
    return "\n".join(lines) + "\n"


def _default_text(item: dataclasses.Field[Any]) -> str:
    if not item.init:
        return f"always `{item.default!r}`"
    if item.default is not dataclasses.MISSING:
        return f"`{item.default!r}`"
    if item.default_factory is not dataclasses.MISSING:
        return f"`{item.default_factory()!r}`"
    return "required"


def _field_docstrings() -> dict[str, dict[str, str]]:
    """Class name -> field name -> the docstring under the field in this file, on one line."""
    found: dict[str, dict[str, str]] = {}
    for node in ast.parse(Path(__file__).read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ClassDef):
            body = node.body
            found[node.name] = {
                target.target.id: " ".join(str(doc.value.value).split())
                for target, doc in zip(body, body[1:])
                if isinstance(target, ast.AnnAssign) and isinstance(target.target, ast.Name)
                and isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
            }
    return found


# ---------------------------------------------------------------------------- task names

TASK_ALIASES = {"speech-recognition": "automatic-speech-recognition"}


def canonical_task(task: str, *, stacklevel: int = 2) -> str:
    """The Hub's name for `task`; an old spelling is accepted with a DeprecationWarning."""
    if task not in TASK_ALIASES:
        return task
    warnings.warn(f"task {task!r} is now called {TASK_ALIASES[task]!r} (the Hugging Face Hub's name); "
                  "the old name will stop working in a future release", DeprecationWarning, stacklevel=stacklevel + 1)
    return TASK_ALIASES[task]
