"""Every image card of the torchvision catalogue honours each create-time option its card declares.

Built with ``device="meta"`` (no memory, no initialisation) and run on meta inputs, which checks the shapes and
the modules each option reaches; a slow sweep (``pytest -m slow``).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

import zoo
from zoo.create_options import POOL_TYPES


def image_cards() -> list[str]:
    return [n for n in zoo.list_models(modality="image") if zoo.get_card(n).recipe is None
            and zoo.default_registry().claim(n).plugin == "vision"]


def run(model: nn.Module, channels: int, side: int) -> torch.Tensor:
    return model.eval()(torch.empty(1, channels, side, side, device="meta"))


def rates(model: nn.Module, attribute: str) -> list[float]:
    return [getattr(m, attribute) for m in model.modules() if isinstance(getattr(m, attribute, None), float)]


def check_options(name: str) -> None:
    card = zoo.get_card(name)
    options = card.create_options
    side = card.input.size
    if "drop_rate" in options:
        model = zoo.create(name, device="meta", drop_rate=0.123)
        assert 0.123 in rates(model, "p") + rates(model, "drop_rate"), f"{name}: drop_rate reached no dropout"
    if "drop_path_rate" in options:
        model = zoo.create(name, device="meta", drop_path_rate=0.3)
        depths = [m.p for m in model.modules() if type(m).__name__ == "StochasticDepth"]
        assert depths and 0.2 < max(depths) <= 0.3, f"{name}: stochastic depth rates {depths}"
    for pool in options.get("global_pool", {}).get("values", POOL_TYPES) if "global_pool" in options else ():
        model = zoo.create(name, device="meta", global_pool=pool, num_classes=0)
        out = run(model, 3, side)
        # pooled: [1, num_features]; unpooled (""): the [1, num_features, H, W] map
        assert tuple(out.shape[:2]) == (1, card.num_features) and (out.ndim == 4) == (pool == ""), \
            f"{name} {pool!r}: {out.shape}"
    if "in_chans" in options:
        assert run(zoo.create(name, device="meta", in_chans=1), 1, side).shape == (1, 1000), name
        assert run(zoo.create(name, device="meta", in_chans=5, num_classes=3), 5, side).shape == (1, 3), name
    if "img_size" in options:
        size = options["img_size"]["patch_size"] * 6
        model = zoo.create(name, device="meta", img_size=size)
        assert run(model, 3, size).shape == (1, 1000) and model.zoo_card.input.size == size, name


@pytest.mark.slow
def test_every_image_card_honours_the_options_it_declares():
    names = image_cards()
    assert len(names) >= 83
    failures = []
    for name in names:
        assert zoo.get_card(name).create_options, f"{name} declares no create-time options"
        try:
            check_options(name)
        except Exception as exc:  # noqa: BLE001 - collect every card's failure, then report them all
            failures.append(f"{name}: {type(exc).__name__}: {str(exc)[:300]}")
    assert not failures, "\n".join(failures)
