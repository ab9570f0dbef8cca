"""torch.hub entry points: one per model registered with zoo, plugins' models included.

    torch.hub.load("owner/zoo", "resnet_ft", num_classes=5)

Every public callable here is a model (torch.hub lists them all), so helpers are private.
"""
import zoo as _zoo

dependencies = ["torch", "torchvision"]


def _docstring(name: str) -> str:
    card = _zoo.get_card(name)
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


for _name in _zoo.list_models():
    globals()[_name] = _entry(_name)
del _name
