"""torch.hub entry points: one per model registered with zoo, plugins' models included.

    torch.hub.load("owner/zoo", "resnet_ft", num_classes=5)

Every public callable here is a model (torch.hub lists them all), so helpers are private;
`create` is the one generic entry, for names that are not identifiers and for saved models.
A model whose name cannot be an entry point (not a Python identifier, a keyword, or one of
this file's own names such as ``dependencies``) is left out; `zoo.create` still builds it.
A name that cannot be looked up (two plugins claim it) keeps its entry: its docstring and
its call give zoo's error, and every other entry works.
"""
import keyword as _keyword

import zoo as _zoo

dependencies = ["torch", "torchvision"]


def create(name: str, **kwargs):
    """Any name zoo.create takes: a model, ``name.tag``, a recipe, ``local-dir:PATH`` or ``hf-hub:org/repo``.

    Example: torch.hub.load(repo, "create", "hf-hub:me/resnet50-flowers")
    A saved folder or Hub repo may only name builders of installed plugins (see docs/security.md).
    """
    return _zoo.create(name, **kwargs)


def _docstring(name: str) -> str:
    try:
        card = _zoo.get_card(name)
    except _zoo.ZooError as exc:
        return f"Unavailable: {exc}"
    lines = [card.description or name, "", f"Task: {card.task} ({card.modality}); family: {card.family or '-'}."]
    if card.recipe is not None:
        lines.append(f"Recipe of {card.recipe.model} with {dict(card.recipe.options)}.")
        if card.recipe.required:
            lines.append(f"Required: {', '.join(card.recipe.required)}.")
    if card.weights:
        default = f" (default {card.default_weights})" if card.default_weights else ""
        lines.append(f"Weights: {', '.join(sorted(card.weights))}{default}.")
    lines += ["", "Keyword arguments are those of zoo.create: pretrained, num_classes, freeze and the builder's",
              f"own ({', '.join(sorted(card.defaults)) or 'none declared'}).",
              f"Example: torch.hub.load(repo, {name!r}, num_classes=10)"]
    return "\n".join(lines)


def _entry(name: str):
    def entry(**kwargs):
        return _zoo.create(name, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = _docstring(name)
    return entry


def _is_entry_name(name: str) -> bool:
    """Whether a model name can be an attribute here without hiding or breaking anything."""
    return name.isidentifier() and not _keyword.iskeyword(name) and not name.startswith("_") \
        and name not in _OWN_NAMES


_OWN_NAMES = frozenset(globals()) | {"_OWN_NAMES"}
# Every entry is made before any is installed, so a model named like a builtin hides nothing used here.
globals().update({name: _entry(name) for name in _zoo.list_models() if _is_entry_name(name)})
