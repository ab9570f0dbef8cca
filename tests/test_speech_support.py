"""Helpers for the speech tests: the real speech cards shrunk to a tiny architecture, demo clips."""
from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

import zoo  # noqa: E402
from zoo.factory import build  # noqa: E402
from zoo.registry import Resolved  # noqa: E402
from zoo_speech.architectures import layer_groups  # noqa: E402

TINY_ARCH = {
    "extractor_conv_layer_config": [[32, 10, 5]] + [[32, 3, 2]] * 4 + [[32, 2, 2]] * 2,  # wav2vec2's strides
    "encoder_embed_dim": 32, "encoder_num_layers": 2, "encoder_num_heads": 4, "encoder_ff_interm_features": 64,
    "encoder_pos_conv_kernel": 16, "encoder_pos_conv_groups": 4,
}


def tiny_card(name: str, **changes) -> zoo.ModelCard:
    """The registered card `name` with a small architecture (same builder, head and group layout)."""
    card = zoo.get_card(name)
    defaults = {**card.defaults, **TINY_ARCH}
    return dataclasses.replace(card, defaults=defaults, layer_groups=layer_groups(defaults, card.head),
                               num_features=TINY_ARCH["encoder_embed_dim"], **changes)


def create_tiny(name: str, *, tag: str | None = None, **kwargs):
    """`zoo.create` on the tiny version of a card (the factory path: card attached, head reset, freezing)."""
    card = kwargs.pop("card", None) or tiny_card(name)
    return build(Resolved(card=card, tag=tag), **kwargs)


def test_tiny_cards_keep_the_registered_layout():
    card = tiny_card("wavlm_base_ctc")
    assert card.head == "ctc_head" and card.layer_groups[-1] == "ctc_head"
    model = create_tiny("wavlm_base_ctc")
    assert zoo.card_of(model).name == "wavlm_base_ctc"
    assert sum(p.numel() for p in model.parameters()) < 200_000
