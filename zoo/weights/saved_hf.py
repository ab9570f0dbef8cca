"""Hugging Face ``transformers`` checkpoints: ``config.json`` with a ``"model_type"``.

A registered card that lists the model type in ``extra["hf_model_types"]`` builds it, with
``extra["hf_config_to_kwargs"]`` turning the config into builder arguments and
``extra["hf_key_map"]`` renaming the checkpoint's keys and ``extra["hf_layer_groups"]`` giving the
layer groups of the checkpoint's depth (all named by the installed plugin's card).
Among those cards, the task is ``task=`` if given, else the one the config's ``architectures``
names (``BertForSequenceClassification``: text-classification, with its trained head and labels),
else feature extraction.

A card listing ``"*"`` (`ANY_MODEL_TYPE`) builds any model type no card claims for the task (the
transformers family): those cards are asked only after the model type's own. A card may name
``extra["hf_card"]``, ``"module:function"`` taking ``(card, config, directory, task, builder_kwargs)`` and
returning the card derived from the checkpoint itself (head, layer groups, input spec).

A text card's ``max_length`` is cut to what the checkpoint's position table holds; a card whose checkpoints
number positions from ``pad_token_id + 1`` (RoBERTa's scheme) says so with ``extra["hf_positions_after_padding"]``
(true), and then ``pad_token_id + 1`` rows are left out.

A sentence-transformers repo (``modules.json``) is built with its own pooling and normalisation
(`zoo.weights.sentence_pooling`) by a feature-extraction card that lists the pooling in
``extra["sentence_poolings"]``; any other card, or a pooling no card lists, is refused.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..builders import BuildPlan
from ..cards import TASK_ALIASES, ModelCard, Recipe, TextInput
from ..errors import DuplicateModelError, WeightsError
from ..lazy_cards import LazyCard
from ..registry import default_registry
from .formats import read_state_dict
from .loading import apply_key_map, import_function
from .saved_folder import weights_file
from .saving import CONFIG_NAME
from .sentence_pooling import (
    TOKENIZER_CONFIG_NAME,
    UNLIMITED_LENGTH,
    SentencePooling,
    read_folder_json,
    sentence_pooling,
)

ANY_MODEL_TYPE = "*"
"""The ``extra["hf_model_types"]`` entry of a card that builds any model type no other card claims."""
SENTENCE_POOLINGS = "sentence_poolings"
"""The card ``extra`` key listing the sentence-transformers poolings a feature-extraction card builds
(keywords ``pooling`` and ``normalize``)."""
HF_CARD = "hf_card"
HF_KEY_MAP_ARGS = "hf_key_map_args"
POSITIONS_AFTER_PADDING = "hf_positions_after_padding"
"""The card ``extra`` key (true) of a family whose checkpoints number positions from ``pad_token_id + 1`` (RoBERTa's
scheme), so that ``pad_token_id + 1`` rows of the position table are never used by a token."""
_TOKENIZER_CONFIG_LIMIT = 4 * 1024 * 1024

# The tasks a transformers class's suffix says its trained head does, as the Hub names them; the
# first one a registered card of the model type does wins (sequence classification of text or audio).
ARCHITECTURE_TASKS = (
    ("ForSequenceClassification", ("text-classification", "audio-classification")),
    ("ForAudioClassification", ("audio-classification",)),
    ("ForTokenClassification", ("token-classification",)),
    ("ForCTC", ("automatic-speech-recognition",)),
)
# Old spellings of the Hub's task names, still accepted where a user types a task.
def hf_plan(directory: Path, config: Mapping[str, Any], kwargs: Mapping[str, Any], *, task: str | None,
            load: bool) -> BuildPlan:
    """The plan to build a transformers checkpoint with the family that declares its model type."""
    card = transformers_card(config, directory / CONFIG_NAME, task=task, kwargs=kwargs)
    if not load:
        return BuildPlan(card=card, head_optional=True, where=str(directory), location=str(directory))
    path = weights_file(directory)
    state = _mapped(read_state_dict(path), card)
    return BuildPlan(card=card, state=state, head_optional=True, where=str(path), location=str(directory))


def _mapped(state: dict[str, Any], card: ModelCard) -> dict[str, Any]:
    """The checkpoint's tensors renamed by the card's ``hf_key_map``, called with ``hf_key_map_args``
    (plain data the card derived from the checkpoint) as keywords when it has them."""
    spec, args = card.extra.get("hf_key_map"), card.extra.get(HF_KEY_MAP_ARGS)
    if not isinstance(args, Mapping) or not isinstance(spec, str):
        return apply_key_map(state, spec, card.name)
    mapped = import_function(spec, f"key map of {card.name}")(state, **args)
    if not isinstance(mapped, Mapping):
        raise WeightsError(f"key map {spec!r} of {card.name} returned {type(mapped).__name__}, not a mapping")
    return dict(mapped)


def _hf_cards(model_type: str) -> list[ModelCard]:
    registry = default_registry()
    cards = []
    for name in registry.names():
        try:
            claim = registry.claim(name)
            if isinstance(claim.registered, LazyCard):
                continue  # a catalogue's cards (timm's thousands) name no transformers model types
            entry = claim.entry
        except DuplicateModelError:
            continue
        if isinstance(entry, Recipe):
            continue
        if model_type in (entry.extra.get("hf_model_types") or ()):
            cards.append(entry)
    return cards


def choose_card(model_type: str, task: str | None, architectures: Sequence[str] = ()) -> ModelCard:
    """The registered card for a transformers `model_type`: of `task` if given, else of the task the
    checkpoint's `architectures` were trained for, else feature extraction first. Cards that claim the model
    type come first; cards for any model type (`ANY_MODEL_TYPE`) serve what they do not."""
    own, anything = _hf_cards(model_type), _hf_cards(ANY_MODEL_TYPE)
    if not own and not anything:
        raise WeightsError(f"no registered model loads transformers model_type {model_type!r}; install a family "
                           "plugin whose cards list it in extra['hf_model_types'] (see `zoo plugins`), e.g. the "
                           'transformers family: pip install "zoo-models[transformers]"')
    for cards in (own, anything):
        chosen = _pick(cards, task, architectures)
        if chosen is not None:
            return chosen
    tasks = sorted({c.task for c in own + anything})
    raise WeightsError(f"no registered model loads model_type {model_type!r} for task {task!r}; "
                       f"tasks available: {', '.join(tasks)}")


def _pick(cards: list[ModelCard], task: str | None, architectures: Sequence[str]) -> ModelCard | None:
    if not cards:
        return None
    if task is not None:
        matching = [c for c in cards if TASK_ALIASES.get(c.task, c.task) == task]
        return matching[0] if matching else None
    trained_tasks = architecture_tasks(architectures)
    for trained in trained_tasks:
        matching = [c for c in cards if TASK_ALIASES.get(c.task, c.task) == trained]
        if matching:
            return matching[0]
    if trained_tasks and not any(c.extra.get(HF_CARD) for c in cards):
        return None  # trained for a task these cards do not build: let a family that builds it have it
    features = [c for c in cards if c.task == "feature-extraction"]
    return (features or cards)[0]


def architecture_tasks(architectures: Sequence[str]) -> list[str]:
    """The tasks transformers class names such as ``BertForTokenClassification`` were trained for, in order."""
    return [task for name in architectures for suffix, tasks in ARCHITECTURE_TASKS if name.endswith(suffix)
            for task in tasks]


def transformers_card(config: Mapping[str, Any], where: Path, *, task: str | None,
                       kwargs: Mapping[str, Any] | None = None) -> ModelCard:
    """The registered card that builds this checkpoint, with builder arguments and labels from its config."""
    model_type = config["model_type"]
    if not isinstance(model_type, str):
        raise WeightsError(f"{where}: 'model_type' must be a string, got {model_type!r}")
    architectures = config.get("architectures") or []
    if not isinstance(architectures, list) or not all(isinstance(name, str) for name in architectures):
        raise WeightsError(f"{where}: 'architectures' must be a list of transformers class names, "
                           f"got {architectures!r}")
    card = choose_card(model_type, task, architectures)
    to_kwargs = card.extra.get("hf_config_to_kwargs")
    derived = _derived_kwargs(import_function(to_kwargs, f"config converter of {card.name}"), config, where) \
        if to_kwargs else {}
    builder_kwargs = {**card.defaults, **derived}
    card, builder_kwargs = _with_sentence_pooling(card, builder_kwargs, where.parent)
    builder_kwargs.update(kwargs or {})
    hook = card.extra.get(HF_CARD)
    if isinstance(hook, str):
        card = import_function(hook, f"checkpoint reader of {card.name}")(card, dict(config), where.parent, task,
                                                                           builder_kwargs)
        if not isinstance(card, ModelCard):
            raise WeightsError(f"{hook} returned {type(card).__name__}, not a zoo.ModelCard")
        builder_kwargs = dict(card.defaults)
    labels = _config_labels(config)
    built_classes = builder_kwargs.get("num_classes", card.class_count())
    extra = {**card.extra, "hf_model_type": model_type,
             **({"labels": labels} if labels and len(labels) == built_classes else {})}
    return dataclasses.replace(card, defaults=builder_kwargs, num_classes=built_classes, default_weights=None,
                               extra=extra, layer_groups=_layer_groups(card, builder_kwargs),
                               input=_text_input_within(card, config, where.parent))


def positions_after_padding(card: ModelCard) -> bool:
    """Whether the card's checkpoints number positions from ``pad_token_id + 1`` (`POSITIONS_AFTER_PADDING`)."""
    return card.extra.get(POSITIONS_AFTER_PADDING) is True


def _text_input_within(card: ModelCard, config: Mapping[str, Any], directory: Path) -> Any:
    """A text card's input spec cut to the checkpoint's own length: the shortest of the card's ``max_length``,
    the position table's usable rows (``max_position_embeddings``, less the padding offset where the card says
    positions start after it) and ``tokenizer_config.json``'s ``model_max_length``, each where the checkpoint
    gives a sane one. A longer sequence would index past the position table; other specs are returned as they
    are."""
    spec = card.input
    if not isinstance(spec, TextInput):
        return spec
    limits = [spec.max_length]
    positions = _length(config.get("max_position_embeddings"))
    if positions is not None:
        pad = config.get("pad_token_id")
        pad = pad if isinstance(pad, int) and not isinstance(pad, bool) and pad >= 0 else 1
        offset = pad + 1 if positions_after_padding(card) else 0
        if positions > offset:
            limits.append(positions - offset)
    tokenizer_limit = _length(_tokenizer_config(directory).get("model_max_length"))
    if tokenizer_limit is not None:
        limits.append(tokenizer_limit)
    shortest = min(limits)
    return spec if shortest == spec.max_length else dataclasses.replace(spec, max_length=shortest)


def _length(value: Any) -> int | None:
    """`value` when it is a usable sequence length (a positive int below tokenizers' "no limit"), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < UNLIMITED_LENGTH else None


def _tokenizer_config(directory: Path) -> dict[str, Any]:
    """The folder's ``tokenizer_config.json`` as a JSON object; {} when there is none or it is unreadable (it only
    ever lowers the length limit, so a broken one is ignored rather than refused)."""
    try:
        data = read_folder_json(directory, TOKENIZER_CONFIG_NAME, limit=_TOKENIZER_CONFIG_LIMIT)
    except WeightsError:  # unreadable, or a link out of the folder: not read
        return {}
    return data if isinstance(data, dict) else {}


def _with_sentence_pooling(card: ModelCard, builder_kwargs: dict[str, Any],
                           directory: Path) -> tuple[ModelCard, dict[str, Any]]:
    """The card and builder keywords that pool as the folder's sentence-transformers modules say, if it has them."""
    settings = sentence_pooling(directory)
    if settings is None:
        return card, builder_kwargs
    supported = card.extra.get(SENTENCE_POOLINGS) or ()
    if card.task != "feature-extraction" or settings.pooling not in supported:
        can = f"it pools with {', '.join(supported)}" if supported else "it builds no sentence-transformers pooling"
        raise WeightsError(f"{directory} is a sentence-transformers model pooled with {settings.pooling!r}"
                           f"{' and normalised' if settings.normalize else ''}, which {card.name!r} cannot "
                           f"reproduce for task {card.task!r} ({can}); zoo refuses rather than embed differently. "
                           "Load it for feature extraction (task='feature-extraction') with a family that pools so")
    return _pooled_card(card, settings), {**builder_kwargs, "pooling": settings.pooling,
                                          "normalize": settings.normalize}


def _pooled_card(card: ModelCard, settings: SentencePooling) -> ModelCard:
    spec = card.input if isinstance(card.input, TextInput) else TextInput()
    if settings.max_seq_length is not None:
        spec = dataclasses.replace(spec, max_length=settings.max_seq_length)
    extra = {**card.extra, "sentence_pooling": dataclasses.asdict(settings)}
    return dataclasses.replace(card, input=spec, extra=extra)


def _layer_groups(card: ModelCard, builder_kwargs: Mapping[str, Any]) -> list[str]:
    """The layer groups of the checkpoint's own depth, where the card names a function that gives them
    (``extra["hf_layer_groups"]``: builder keywords and head -> prefixes); else the card's."""
    spec = card.extra.get("hf_layer_groups")
    if not spec:
        return list(card.layer_groups)
    groups = import_function(spec, f"layer groups of {card.name}")(dict(builder_kwargs), card.head)
    if not isinstance(groups, (list, tuple)) or not all(isinstance(group, str) for group in groups):
        raise WeightsError(f"{spec} (layer groups of {card.name}) returned {groups!r}, not a list of module prefixes")
    return list(groups)


def _derived_kwargs(convert: Any, config: Mapping[str, Any], where: Path) -> Mapping[str, Any]:
    """Builder arguments from a transformers config; a missing or ill-typed field is a clear error."""
    try:
        derived = convert(dict(config))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise WeightsError(f"{where} is not a usable transformers config ({detail})") from None
    if not isinstance(derived, Mapping):
        raise WeightsError(f"{where}: its config converter returned {type(derived).__name__}, not a mapping")
    return derived


def _config_labels(config: Mapping[str, Any]) -> list[str] | None:
    id2label = config.get("id2label")
    if not isinstance(id2label, Mapping) or not id2label:
        return None
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (TypeError, ValueError):
        return None
