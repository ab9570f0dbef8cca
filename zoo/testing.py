"""Checks for plugin authors' test suites: ``zoo.testing.check_plugin("acme")``.

Every card of the plugin is built as `zoo.create` builds it (its defaults, no weights) and
checked: the head and layer groups name modules of the built model (as `zoo.create` itself
checks), the input spec suits the card's modality, a forward pass on an input made from that
spec gives a batch of outputs, a new head gives ``num_classes`` outputs, ``num_classes=0``
gives features of the card's ``num_features``, and weights shipped inside the plugin's package
(``package:`` sources) are there and match their sha256. Each recipe is built on its model (no
weights) with its own options, so a freeze pattern that matches nothing is found too. Every
problem is collected before anything is raised, so one run shows them all.

This module imports torch; ``import zoo`` does not import it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .cards import AudioInput, ImageInput, ModelCard, Recipe, TextInput
from .errors import PluginError, ZooError
from .factory import create
from .finetune.heads import reset_head
from .model_outputs import leading_tensor
from .plugins import PluginInfo
from .registry import Registry, default_registry
from .weights.sources import PACKAGE_PREFIX, fetch

__all__ = ["PluginCheckError", "PluginReport", "check_plugin", "example_input"]

CLASSES = 3  # the head size a card is checked with: not the builder's default, so a head that ignores it shows
TEXT_LENGTH = 16


@dataclass(frozen=True)
class PluginReport:
    """What `check_plugin` checked (card and recipe names) and the problems found, one line each."""

    plugin: str
    distribution: str
    checked: tuple[str, ...]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        head = f"plugin {self.plugin!r} from distribution {self.distribution}: {len(self.checked)} entries checked"
        if self.ok:
            return f"{head}, no problems"
        return f"{head}, {len(self.problems)} problem(s):\n" + "\n".join(f"- {line}" for line in self.problems)


class PluginCheckError(PluginError):
    """`check_plugin` found problems; `report` lists every one."""

    def __init__(self, report: PluginReport):
        self.report = report
        super().__init__(f"{report}\nFix the cards (docs/plugins.md, docs/cards.md) and run check_plugin again.")


def check_plugin(plugin: str, *, batch: int = 2, device: str = "cpu", raise_on_problems: bool = True) -> PluginReport:
    """Build and check every card and recipe `plugin` registers; the report, or `PluginCheckError` listing problems.

    `plugin` is the entry-point name (``"acme"``) or the distribution name (``"acme-zoo"``).
    Nothing is downloaded: cards are built without weights. ``device="meta"`` builds and runs
    without memory or arithmetic (shapes only), for sweeps over large models; an entry that
    fails there is checked again on the CPU, so only real problems are reported.
    """
    registry = default_registry()
    info = _plugin_info(registry, plugin)
    problems = [f"{info.name}: {info.error}"] if info.error else []
    for name in info.models:
        found = _check_entry(registry, name, batch, device)
        if found and torch.device(device).type == "meta":
            found = _check_entry(registry, name, batch, "cpu")  # what cannot run on meta runs for real
        problems += [f"{name}: {problem}" for problem in found]
    report = PluginReport(info.name, info.distribution, info.models, tuple(problems))
    if problems and raise_on_problems:
        raise PluginCheckError(report)
    return report


def _check_entry(registry: Registry, name: str, batch: int, device: str) -> list[str]:
    """The problems of one card or recipe, every failure included."""
    try:
        entry = registry.entry(name)
        with torch.device(device):
            return _check_recipe(entry) if isinstance(entry, Recipe) else _check_card(entry, batch)
    except Exception as exc:  # noqa: BLE001 - a check reports every failure and goes on to the next entry
        return [str(exc) if isinstance(exc, ZooError) else f"building failed: {type(exc).__name__}: {exc}"]


def _plugin_info(registry: Registry, plugin: str) -> PluginInfo:
    infos = registry.plugins()
    found = [info for info in infos if plugin in (info.name, info.distribution)]
    if not found:
        known = ", ".join(f"{info.name} ({info.distribution})" for info in infos) or "none"
        raise PluginError(f"no plugin {plugin!r} is installed; plugins found: {known}")
    info = found[0]
    if info.status != "loaded":
        raise PluginError(f"plugin {info.name!r} from distribution {info.distribution} is {info.status}: {info.error}")
    return info


def example_input(card: ModelCard, batch: int = 2) -> torch.Tensor:
    """A random batch shaped as the card's input spec says: images, token ids or waveforms."""
    spec = card.input
    if isinstance(spec, ImageInput):
        return torch.randn(batch, 3, spec.size, spec.size)
    if isinstance(spec, TextInput):
        vocab = card.defaults.get("vocab_size", 100)
        return torch.randint(0, min(int(vocab), 100), (batch, min(spec.max_length, TEXT_LENGTH)))
    if isinstance(spec, AudioInput):
        return torch.randn(batch, int(spec.sample_rate * (spec.clip_seconds or 1.0)))
    raise ZooError(f"model {card.name!r} has no input spec, so no input can be made for it; set the card's "
                   "input (zoo.ImageInput, zoo.TextInput or zoo.AudioInput)")


def _check_card(card: ModelCard, batch: int) -> list[str]:
    if card.input is None or card.input.kind != card.modality:
        kind = None if card.input is None else card.input.kind
        return [f"field 'input' is {kind!r} for a model of modality {card.modality!r}; set an input spec "
                f"of its modality (zoo.ImageInput, zoo.TextInput or zoo.AudioInput)"]
    problems = _check_shipped_weights(card)
    torch.manual_seed(0)
    classifier = card.head is not None and card.task.endswith("classification")
    model = create(card.name, pretrained=False, num_classes=CLASSES if classifier else None).eval()
    x = example_input(card, batch)
    problems += _check_forward(model, x, CLASSES if classifier else None,
                               f"with a new head of {CLASSES} classes" if classifier else "with its defaults")
    if card.head:
        reset_head(model, 0)
        problems += _check_forward(model, x, card.num_features, "with num_classes=0 (features)")
    return problems


def _check_shipped_weights(card: ModelCard) -> list[str]:
    """Weights shipped inside a package (``package:`` sources) exist and match their sha256; nothing is downloaded."""
    problems = []
    for tag, weights in card.weights.items():
        if weights.source.startswith(PACKAGE_PREFIX):
            try:
                fetch(card, tag)
            except ZooError as exc:
                problems.append(f"weights {tag!r}: {exc}")
    return problems


def _check_recipe(recipe: Recipe) -> list[str]:
    """Build the recipe on its model without weights, with its own freeze (which must match parameters)."""
    options = dict(recipe.options)
    required = {key: CLASSES if key == "num_classes" else None for key in recipe.required}
    freeze = options.pop("freeze", None)
    options.pop("pretrained", None)
    create(recipe.name, **{**options, **required, "pretrained": False, "freeze": freeze})
    return []


def _check_forward(model: nn.Module, x: torch.Tensor, width: int | None, what: str) -> list[str]:
    """Problems with a forward pass: it fails, returns no tensor, a wrong batch size or a last dimension not `width`."""
    batch = x.shape[0]
    try:
        with torch.inference_mode():
            output = model(x)
    except Exception as exc:  # noqa: BLE001 - reported with the card's name, then the check goes on
        return [f"{what}: forward on input of shape {tuple(x.shape)} failed: {type(exc).__name__}: {exc}"]
    tensor = leading_tensor(output)
    if tensor is None:
        return [f"{what}: forward returned {type(output).__name__}, not a tensor (or an output with 'logits')"]
    if tensor.ndim == 0 or tensor.shape[0] != batch:
        return [f"{what}: forward on a batch of {batch} returned shape {tuple(tensor.shape)}"]
    if width is not None and tensor.shape[-1] != width:
        return [f"{what}: outputs end in {tensor.shape[-1]}, expected {width} (shape {tuple(tensor.shape)})"]
    return []
