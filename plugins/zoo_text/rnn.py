"""RNN text classifiers (LSTM or GRU, optionally bidirectional) for small data sets trained from scratch.

Token ids -> embedding -> packed RNN (padding never enters the recurrence) -> states pooled
over real tokens (max, mean, or the last state of each direction) -> dropout -> linear head.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from zoo import InvalidArgumentError

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU}
POOLINGS = ("max", "mean", "last")


class TextRNN(nn.Module):
    """``forward(input_ids, attention_mask=None)`` -> logits ``[batch, num_classes]`` (or pooled features)."""

    def __init__(self, *, vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int, cell: str,
                 bidirectional: bool, dropout: float, pooling: str, pad_token_id: int, num_classes: int) -> None:
        super().__init__()
        if cell not in CELLS:
            raise InvalidArgumentError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if pooling not in POOLINGS:
            raise InvalidArgumentError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.pad_token_id = pad_token_id
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_token_id)
        self.rnn = CELLS[cell](embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                               bidirectional=bidirectional, dropout=dropout if num_layers > 1 else 0.0)
        self.num_features = hidden_size * (2 if bidirectional else 1)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Pooled RNN states ``[batch, num_features]``; `token_type_ids` is accepted and ignored."""
        if attention_mask is None:
            attention_mask = input_ids.ne(self.pad_token_id)
        lengths = attention_mask.sum(dim=1).clamp(min=1)
        packed = pack_padded_sequence(self.embedding(input_ids), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        out, state = self.rnn(packed)
        if self.pooling == "last":
            hidden = state[0] if isinstance(state, tuple) else state
            directions = 2 if self.rnn.bidirectional else 1
            return hidden[-directions:].transpose(0, 1).reshape(input_ids.shape[0], -1)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=input_ids.shape[1])
        valid = (torch.arange(out.shape[1], device=out.device)[None, :] < lengths[:, None].to(out.device))
        valid = valid.unsqueeze(-1)
        if self.pooling == "max":
            return out.masked_fill(~valid, torch.finfo(out.dtype).min).amax(dim=1)
        return (out * valid).sum(dim=1) / lengths[:, None].to(out.dtype)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.drop(self.forward_features(input_ids, attention_mask)))


def build_text_rnn(
    *,
    vocab_size: int = 8000,
    embed_dim: int = 128,
    hidden_size: int = 128,
    num_layers: int = 1,
    cell: str = "lstm",
    bidirectional: bool = False,
    dropout: float = 0.1,
    pooling: str = "max",
    pad_token_id: int = 0,
    num_classes: int = 2,
) -> TextRNN:
    """Build a `TextRNN`; `vocab_size` must cover the tokenizer (``tokenizer.vocab_size``)."""
    return TextRNN(vocab_size=vocab_size, embed_dim=embed_dim, hidden_size=hidden_size, num_layers=num_layers,
                   cell=cell, bidirectional=bidirectional, dropout=dropout, pooling=pooling,
                   pad_token_id=pad_token_id, num_classes=num_classes)
