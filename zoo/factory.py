"""`zoo.create`: a name -> a build plan from its source -> one assembly (builder, weights, head, freezing).

Each source only says what it knows (`zoo.builders.BuildPlan`): a registered name with its card
and weights (here and in `zoo.weights.pretrained`), a saved folder or Hub repo
(`zoo.weights.saved`). `assemble` does the rest for all of them, and imports the builder only
through `zoo.builders.import_builder`, where the trust rule lives.

torch and the plugin's model code are imported inside the functions, so that `import zoo` and
listing stay free of them.
"""
from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .arguments import check_input_sizes, checked_num_classes, checked_pretrained
from .builders import BuildPlan, accepts, call_builder, check_kwargs, import_builder, names_keyword
from .cards import ARCHITECTURE_OPTIONS, CARD_ATTRIBUTE, ImageInput, ModelCard, attach_card, card_of
from .create_options import APPLIED_OPTIONS, UNIVERSAL_OPTIONS, CreateOptions, take_options
from .errors import CardError, InvalidArgumentError, ZooError
from .names import SAVED_PREFIXES, is_saved_name
from .registry import Claim, Resolved, default_registry

# Kept importable from here for code written before they moved beside the card and the builder.
__all__ = ["BUILDER_WEIGHTS", "CARD_ATTRIBUTE", "SAVED_PREFIXES", "BuildPlan", "accepts", "assemble", "attach_card",
           "build", "call_builder", "card_of", "check_kwargs", "check_structure", "create", "import_builder"]

BUILDER_WEIGHTS = "builder_weights"
"""The card ``extra`` key naming a builder's own weights keyword and how its values map to zoo's weights tags:
``{"keyword": "weights", "enum": "ResNet50_Weights", "names": {"DEFAULT": "imagenet1k_v2", ...}}``. A name
mapped to ``"other_card.tag"`` lives on another card."""

if TYPE_CHECKING:
    import torch


def create(
    name: str,
    *,
    pretrained: bool | None = None,
    num_classes: int | None = None,
    freeze: Any = None,
    features_only: bool | None = None,
    out_indices: Any = None,
    **kwargs: Any,
) -> torch.nn.Module:
    """Build a registered model.

    Args:
        name: a registered name or alias, ``name.tag`` for one set of weights, a recipe,
            ``hf-hub:org/repo`` or ``local-dir:PATH`` for a saved model.
        pretrained: load the default (or tagged) weights. Defaults to False, or to what
            a recipe says.
        num_classes: outputs of a new head; ``0`` removes the head and returns pooled
            features. With weights of another class count, only the head is left untrained.
        freeze: what to freeze, as in `zoo.finetune.freeze` (``"backbone"``, an integer
            over layer groups, or name patterns); ``False`` freezes nothing, whatever a recipe says.
            A recipe that freezes a model with weights refuses ``pretrained=False`` unless `freeze`
            is given too.
        features_only: return a module whose forward gives a list of feature maps, the card's
            `feature_stages` (``model.feature_info`` as timm's); weights load without the head.
        out_indices: with `features_only`, the stages to return (default all); negative indices count
            from the end.
        **kwargs: keyword arguments of the model's builder; unknown ones are an error. A builder's
            own weights keyword (torchvision's ``weights="DEFAULT"``) selects zoo's weights tag, loaded
            and checked by zoo, where the card maps it (`BUILDER_WEIGHTS`). Also zoo's create-time options
            (`zoo.create_options`), where the card maps them: ``drop_rate``, ``drop_path_rate``,
            ``global_pool`` (``"avg"``, ``"max"``, ``"avgmax"``, or ``""`` with ``num_classes=0`` for the
            unpooled map), ``in_chans`` (pretrained first-layer weights adapted), ``img_size`` (position
            embeddings resampled); and for every model ``checkpoint_path`` (a local ``.safetensors`` file or
            a folder saved by zoo, loaded head-aware), ``device`` and ``dtype`` (built and loaded there).
            ``zoo.create_options.supported(zoo.get_card(name))`` lists what a model takes.

    The returned module carries its card as ``module.zoo_card``.
    """
    if not isinstance(name, str):
        raise InvalidArgumentError(f"a model name is a string such as 'resnet50' or 'local-dir:PATH', got {name!r}")
    checked_pretrained(pretrained)
    checked_num_classes(num_classes)
    if is_saved_name(name):
        from .weights.saved import saved_plan  # reads files with torch and safetensors

        freeze_bn = kwargs.pop("freeze_bn", "frozen")
        given = {k: kwargs.pop(k) for k in (*ARCHITECTURE_OPTIONS, *UNIVERSAL_OPTIONS) if k in kwargs}
        plan = saved_plan(name, pretrained=pretrained, **kwargs)
        plan, options = _saved_options(plan, given)
        features = _features_wanted(plan.card, features_only, out_indices)
        if features:
            _refuse_classes_with_features(plan.card, num_classes)
        _check_unpooled(plan.card, options, plan.saved_head if num_classes is None else num_classes, features)
        if not features:
            return assemble(plan, num_classes=num_classes, freeze=freeze, freeze_bn=freeze_bn, options=options)
        model = assemble(plan, num_classes=0 if plan.card.head else None, freeze=freeze, freeze_bn=freeze_bn,
                         options=options)
        return _features(model, out_indices)
    resolved = default_registry().resolve(name)
    return build(resolved, pretrained=pretrained, num_classes=num_classes, freeze=freeze,
                 features_only=features_only, out_indices=out_indices, **kwargs)


def build(
    resolved: Resolved,
    *,
    pretrained: bool | None = None,
    num_classes: int | None = None,
    freeze: Any = None,
    features_only: bool | None = None,
    out_indices: Any = None,
    **kwargs: Any,
) -> torch.nn.Module:
    """Build the model a `Resolved` names (the part of `create` after the lookup)."""
    resolved, pretrained = _builder_weights(resolved, kwargs, pretrained)
    _refuse_frozen_random_layers(resolved, pretrained=pretrained, freeze=freeze)
    card = resolved.card
    given = {"pretrained": pretrained, "num_classes": num_classes, "freeze": freeze,
             "features_only": features_only, "out_indices": out_indices}
    options = {**resolved.options, **{k: v for k, v in given.items() if v is not None}, **kwargs}
    missing = [key for key in resolved.required if options.get(key) is None]
    if missing:
        example = ", ".join(f"{key}=..." for key in missing)
        raise InvalidArgumentError(f"{card.name!r} needs {', '.join(missing)}: zoo.create({card.name!r}, {example})")
    pretrained = bool(checked_pretrained(options.pop("pretrained", False)))
    num_classes = checked_num_classes(options.pop("num_classes", None))
    freeze = options.pop("freeze", None)
    freeze_bn = options.pop("freeze_bn", "frozen")
    features_only, out_indices = options.pop("features_only", None), options.pop("out_indices", None)
    builder = import_builder(card)
    create_options = take_options(card, options, builder_takes=lambda option: names_keyword(builder, option))
    options.update(create_options.builder_keywords())
    check_input_sizes(options)
    checkpoint = create_options.checkpoint_path
    if checkpoint is not None:
        if given["pretrained"]:
            raise InvalidArgumentError(f"model {card.name!r}: checkpoint_path={str(checkpoint)!r} loads the weights "
                                       "of that file, and pretrained=True those of the card; pass one of them")
        pretrained = False

    features = _features_wanted(card, features_only, out_indices)
    _check_unpooled(card, create_options, num_classes, features)
    if features:
        _refuse_classes_with_features(card, num_classes)
        # The head's weights load (strictly, as with the head) and the head is then removed.
        plan = registry_plan(resolved, options, pretrained=pretrained, num_classes=None, checkpoint=checkpoint)
        model = assemble(plan, num_classes=0 if card.head else None, freeze=freeze, freeze_bn=freeze_bn,
                         options=create_options)
        return _features(model, out_indices)
    plan = registry_plan(resolved, options, pretrained=pretrained, num_classes=num_classes, checkpoint=checkpoint)
    return assemble(plan, num_classes=num_classes, freeze=freeze, freeze_bn=freeze_bn, options=create_options)


def _saved_options(plan: BuildPlan, given: dict[str, Any]) -> tuple[BuildPlan, CreateOptions]:
    """A saved model's create-time options: those it was built with (replayed), then the caller's."""
    card = plan.card
    if given.get("checkpoint_path") is not None:
        raise InvalidArgumentError(f"{card.name!r} is a saved model and loads its own weights; checkpoint_path= "
                                   "is for a registered name: zoo.create(NAME, checkpoint_path=...)")
    replayed = card.extra.get(APPLIED_OPTIONS)
    options = take_options(card, given, replayed=replayed if isinstance(replayed, dict) else None)
    keywords = {**options.builder_keywords(), **given}  # `given` keeps what the builder takes by name
    check_input_sizes(keywords)
    if keywords:
        plan = dataclasses.replace(plan, card=dataclasses.replace(card, defaults={**card.defaults, **keywords}))
    return plan, options


def _check_unpooled(card: ModelCard, options: CreateOptions, num_classes: int | None, features: bool) -> None:
    """``global_pool=""`` (zoo's pooling) leaves a map the head cannot read: it needs ``num_classes=0``."""
    if options.module_values().get("global_pool") == "" and num_classes != 0 and not features:
        raise InvalidArgumentError(f"model {card.name!r}: global_pool='' leaves the feature map unpooled, which "
                                   "its head cannot read; pass num_classes=0 too (the model then returns the "
                                   "[N, C, H, W] map), or pick a pooling: 'avg', 'max' or 'avgmax'")


def _refuse_classes_with_features(card: ModelCard, num_classes: int | None) -> None:
    if num_classes:
        raise InvalidArgumentError(f"model {card.name!r}: features_only=True returns feature maps, not "
                                   f"classes; leave out num_classes={num_classes}")


def _features_wanted(card: ModelCard, features_only: Any, out_indices: Any) -> bool:
    """Whether to build the feature maps; `out_indices` are checked against the card now, before any build."""
    if features_only is not None and not isinstance(features_only, bool):
        raise InvalidArgumentError(f"features_only must be True or False, got {features_only!r}")
    if not features_only:
        if out_indices is not None:
            raise InvalidArgumentError(f"out_indices={out_indices!r} selects feature maps; it needs "
                                       "features_only=True")
        return False
    from .feature_maps import feature_indices  # torch; imported here to keep torch off zoo's import path

    feature_indices(card, out_indices)
    return True


def _features(model: torch.nn.Module, out_indices: Any) -> torch.nn.Module:
    """The built model wrapped to return the feature maps of its card's stages at `out_indices`."""
    from .feature_maps import features_model  # torch; imported here to keep torch off zoo's import path

    return features_model(model, card_of(model), out_indices)


def _refuse_frozen_random_layers(resolved: Resolved, *, pretrained: bool | None, freeze: Any) -> None:
    """``pretrained=False`` on a recipe that freezes part of a model with weights would train a head on random
    frozen features: refused unless the caller chose `freeze` too. (A model without weights gives up nothing.)"""
    recipe_freeze = resolved.options.get("freeze")
    if pretrained is not False or freeze is not None or recipe_freeze in (None, False) or not resolved.card.weights:
        return
    raise InvalidArgumentError(
        f"recipe {resolved.card.name!r} freezes {recipe_freeze!r}, and with pretrained=False those layers would "
        "stay random and frozen: only the new head would learn. Instead, load its weights (pretrained=True), or "
        "pass freeze=False to train every layer from random initialisation, or pass a freeze= of your own")


def _builder_weights(resolved: Resolved, kwargs: dict[str, Any],
                     pretrained: bool | None) -> tuple[Resolved, bool | None]:
    """Take a builder's own weights keyword out of `kwargs` and turn it into zoo's weights tag (loaded by zoo).

    Only for cards that map it (`BUILDER_WEIGHTS`); ``None`` means no weights, as for the builder.
    """
    spec = resolved.card.extra.get(BUILDER_WEIGHTS)
    if not isinstance(spec, Mapping) or spec.get("keyword") not in kwargs:
        return resolved, pretrained
    value = kwargs.pop(spec["keyword"])
    if value is None:
        return resolved, pretrained
    tag = _tag_for(resolved.card, spec, value)
    card = resolved.card
    if pretrained is False or (resolved.tag is not None and resolved.tag != tag):
        chosen = "pretrained=False" if pretrained is False else f"the weights tag {resolved.tag!r}"
        raise InvalidArgumentError(f"model {card.name!r}: {spec['keyword']}={value!r} asks for weights {tag!r}, "
                                   f"but {chosen} was given too; pass one of them")
    return dataclasses.replace(resolved, tag=tag), True


def _tag_for(card: ModelCard, spec: Mapping[str, Any], value: Any) -> str:
    """zoo's weights tag for a value of the builder's weights keyword, or the error that gives zoo's spelling."""
    names: Mapping[str, str] = spec.get("names", {})
    family = str(spec.get("enum", ""))
    if isinstance(value, enum.Enum):
        key = value.name if type(value).__name__ == family else None
    elif isinstance(value, str):
        key = value.removeprefix(f"{family}.") if family else value
    else:
        key = None
    target = key if key in card.weights else names.get(key) if key is not None else None
    keyword = spec.get("keyword")
    if target is not None and "." in target:
        raise InvalidArgumentError(f"model {card.name!r}: {keyword}={value!r} are weights of another card, built "
                                   f"for them; in zoo that is zoo.create({target!r}, pretrained=True)")
    if target is None:
        tags = ", ".join(sorted(card.weights)) or "none"
        raise InvalidArgumentError(
            f"model {card.name!r} has no weights {keyword}={value!r}. zoo loads (and checks) weights itself: "
            f"pretrained=True for the default ({card.default_weights}), or zoo.create('{card.name}.TAG', "
            f"pretrained=True) with TAG one of: {tags}. Accepted as {keyword}=: "
            f"{', '.join(sorted(k for k, v in names.items() if '.' not in v))}")
    return target


def _refuse_builder_download(card: ModelCard, kwargs: Mapping[str, Any]) -> None:
    """A builder's own weights keyword never reaches the builder (it would download behind zoo's back)."""
    spec = card.extra.get(BUILDER_WEIGHTS)
    if isinstance(spec, Mapping) and kwargs.get(spec.get("keyword", "")) is not None:
        raise InvalidArgumentError(f"model {card.name!r}: {spec['keyword']}= is not passed to the builder, which "
                                   "would download weights behind zoo's back; a saved model loads its own weights, "
                                   "a registered one takes pretrained=True or 'name.tag'")


def registry_plan(resolved: Resolved, options: dict[str, Any], *, pretrained: bool,
                  num_classes: int | None, checkpoint: Path | None = None) -> BuildPlan:
    """The plan for a registered model: its card, the builder's keywords, and its weights when `pretrained`
    (or those of a local `checkpoint` file)."""
    card = resolved.card
    tag = None
    if pretrained:
        tag = resolved.tag or card.default_weights
        if tag is None:
            raise ZooError(f"model {card.name!r} has no pretrained weights; use pretrained=False, "
                           f"or see `zoo list --pretrained` for models that have them")
    builder = import_builder(card)
    builder_kwargs = {**card.defaults, **options}
    check_kwargs(card, builder, builder_kwargs)  # before any download
    takes_classes = accepts(builder, "num_classes")
    if checkpoint is not None:
        from .weights.checkpoint_file import checkpoint_plan  # reads weights with torch

        return checkpoint_plan(card, checkpoint, builder_kwargs, takes_classes=takes_classes,
                               num_classes=num_classes)
    if tag is not None:
        from .weights.pretrained import pretrained_plan  # reads weights with torch

        return pretrained_plan(card, tag, builder_kwargs, takes_classes=takes_classes, num_classes=num_classes)
    if num_classes and takes_classes:
        builder_kwargs["num_classes"] = num_classes
    built_classes = builder_kwargs.get("num_classes", card.class_count())
    return BuildPlan(card=dataclasses.replace(card, defaults=builder_kwargs, default_weights=None,
                                              num_classes=built_classes))


def assemble(plan: BuildPlan, *, num_classes: int | None = None, freeze: Any = None,
             freeze_bn: str = "frozen", options: CreateOptions | None = None) -> torch.nn.Module:
    """Build what a plan describes: import the builder, build (lean when there are weights, on the
    options' device and dtype), apply the module options, adapt and load the weights, replay a saved head,
    attach the card, then give it `num_classes` outputs and `freeze` it."""
    from .finetune.heads import reset_head  # torch
    from .model_options import (  # torch
        adapt_state,
        apply_modules,
        placed,
        placed_state,
        restore_unpooled,
        torch_device,
        torch_dtype,
    )
    from .weights.loading import build_module  # torch

    options = options if options is not None else CreateOptions(plan.card.name)
    card = _card_with_options(plan.card, options)
    builder = import_builder(card)
    kwargs = plan.kwargs
    check_kwargs(card, builder, kwargs)
    _refuse_builder_download(card, kwargs)
    device, dtype = torch_device(options.device), torch_dtype(options.dtype)

    def prepare(model: torch.nn.Module) -> None:
        attach_card(model, card)
        check_structure(model, card)
        if plan.saved_head is not None and card.head:
            _replay_head(model, plan.saved_head)
        apply_modules(model, card, options)

    def adapt(model: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
        state = adapt_state(model, card, options, _fitting_layout(model, state, plan), where=plan.where)
        return state if device is None and dtype is None else placed_state(state, device, dtype)

    with placed(device, dtype):
        model = build_module(card, builder, kwargs, plan.state, head_optional=plan.head_optional,
                             where=plan.where, prepare=prepare, adapt=adapt)
    if plan.location is not None:
        attach_card(model, dataclasses.replace(card, extra={**card.extra, "weights_location": plan.location}))
    if num_classes is not None and num_classes != card.num_classes:
        reset_head(model, num_classes)
    restore_unpooled(model, card, options)
    if freeze is not None and freeze is not False:
        from .finetune.freezing import freeze as freeze_model  # torch

        freeze_model(model, freeze, bn=freeze_bn)
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)  # what the build left elsewhere (a no-op when all is in place)
    return model


def _card_with_options(card: ModelCard, options: CreateOptions) -> ModelCard:
    """The card a model built with `options` carries: the module options it replays when saved and rebuilt,
    and an image input of ``img_size`` (the resize scaled alike)."""
    applied = options.module_values()
    extra = {k: v for k, v in card.extra.items() if k != APPLIED_OPTIONS}
    if applied:
        extra[APPLIED_OPTIONS] = applied
    size = options.values.get("img_size")
    if not isinstance(size, int):
        return dataclasses.replace(card, extra=extra) if extra != dict(card.extra) else card

    def resized(spec: Any) -> Any:
        if not isinstance(spec, ImageInput) or spec.size == size:
            return spec
        resize = round(spec.resize_size * size / spec.size) if spec.resize_size else None
        return dataclasses.replace(spec, size=size, resize_size=resize)

    weights = {tag: dataclasses.replace(w, input=resized(w.input)) if w.input is not None else w
               for tag, w in card.weights.items()}
    return dataclasses.replace(card, extra=extra, input=resized(card.input), weights=weights)


def _fitting_layout(model: torch.nn.Module, state: Mapping[str, torch.Tensor],
                    plan: BuildPlan) -> Mapping[str, torch.Tensor]:
    """`state` as it is, or through the plan's key map when that gives more of the model's keys."""
    if not plan.key_map:
        return state
    from .weights.loading import apply_key_map  # torch

    expected = set(model.state_dict())
    mapped = apply_key_map(dict(state), plan.key_map, plan.where)
    return mapped if len(expected & set(mapped)) > len(expected & set(state)) else state


def check_structure(model: torch.nn.Module, card: ModelCard) -> None:
    """Raise `CardError` unless the card's `head` and each of its `layer_groups` name a module of `model`.

    Run on every model `create` builds (before weights load; no forward pass), so a card that names
    modules its model lacks fails here, naming its plugin, not later in freezing or training.
    """
    modules = {name for name, _ in model.named_modules()}
    problems = []
    if card.head and card.head not in modules:
        problems.append(("head", f"field 'head' names {card.head!r}"))
    missing = [group for group in card.layer_groups if group not in modules]
    if missing:
        problems.append(("layer_groups", f"field 'layer_groups' names {', '.join(map(repr, missing))}"))
    stages = [stage.module for stage in card.feature_stages if stage.module not in modules]
    if stages:
        problems.append(("feature_stages", f"field 'feature_stages' names {', '.join(map(repr, stages))}"))
    if not problems:
        return
    claim = _claim_of(card)
    owner = f" from distribution {claim.distribution}" if claim is not None else ""
    top = ", ".join(repr(name) for name, _ in model.named_children())
    raise CardError(
        f"the card of model {card.name!r}{owner}: {' and '.join(text for _, text in problems)}, which the built "
        f"{type(model).__name__} does not have (its top-level modules: {top}). Fix the card; "
        "zoo.testing.check_plugin(plugin) checks every card of a plugin", field=problems[0][0],
        plugin=claim.plugin if claim is not None else None)


def _claim_of(card: ModelCard) -> Claim | None:
    """The registry's claim on the card's model (a recipe's: on the model it is built on), or None."""
    name = card.recipe.model if card.recipe is not None else card.name
    try:
        return default_registry().claim(name)
    except ZooError:
        return None


def _replay_head(model: torch.nn.Module, saved_classes: int) -> None:
    """Give a freshly built model the head it had when saved (what `reset_head` did before saving)."""
    from torch import nn  # torch stays off zoo's import path

    from .finetune.heads import get_head, output_layer, reset_head

    _, head = get_head(model)
    found = output_layer(head)
    outputs = getattr(found[1], "out_features", getattr(found[1], "out_channels", None)) if found else None
    if (saved_classes == 0 and not isinstance(head, nn.Identity)) or (saved_classes and outputs != saved_classes):
        reset_head(model, saved_classes)
