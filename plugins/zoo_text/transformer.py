"""A compact post-norm Transformer encoder covering BERT, DistilBERT, RoBERTa and MiniLM.

One fused QKV projection per layer and `F.scaled_dot_product_attention` over all heads
at once; padding is honoured through a boolean key mask. The same module serves three
tasks, chosen by `task`:

* ``text-classification``: first-token pooling (optionally through a dense layer) -> head; a dense
  layer the checkpoint does not hold (``pooler_in_head``) is built fresh into the head (`DenseHead`)
* ``feature-extraction``: masked mean (or first-token) pooling, optional L2 norm -> head
  (``nn.Identity`` unless a class count is given)
* ``token-classification``: every token's hidden state -> head

Parameters live in ``embeddings``, ``layers.N``, ``pooler`` and ``head`` (the card's layer
groups), and every module exists whatever the options, so the groups always resolve.

In eval mode, ``forward`` on a padded batch runs *packed*: the real tokens of all sequences
are stacked into one ``[tokens, hidden]`` matrix, so the projections, the MLP and the norms
never touch padding, and only attention sees the padded ``[batch, heads, length, head_dim]``
layout (scattered in and gathered out per layer). The real tokens' results equal the padded
path's (within float rounding); padded positions of a token-classification output hold what
a zero state gives. ``TextTransformer.packed_inference = False`` turns it off.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from zoo import InvalidArgumentError
from zoo.features import take_indices

TASKS = ("text-classification", "feature-extraction", "token-classification")
POOLINGS = ("cls", "mean", "none")
POSITION_STYLES = ("absolute", "after_padding")


def activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation a checkpoint's config names (``gelu``, ``gelu_new``, ``relu``, ``tanh`` ...)."""
    table: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "gelu": F.gelu,
        "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
        "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "relu": F.relu,
        "tanh": torch.tanh,
        "silu": F.silu,
        "swish": F.silu,
    }
    if name not in table:
        raise InvalidArgumentError(f"unsupported activation {name!r}; use one of {sorted(table)}")
    return table[name]


class Embeddings(nn.Module):
    """Word + position (+ token type) embeddings, LayerNorm, dropout.

    ``position_style="after_padding"`` numbers positions as RoBERTa does: from
    ``pad_token_id + 1``, skipping padding tokens.
    """

    def __init__(self, vocab_size: int, hidden_size: int, max_positions: int, type_vocab_size: int,
                 pad_token_id: int | None, eps: float, dropout: float, position_style: str) -> None:
        super().__init__()
        if position_style not in POSITION_STYLES:
            raise InvalidArgumentError(f"position_style must be one of {POSITION_STYLES}, got {position_style!r}")
        if position_style == "after_padding" and pad_token_id is None:
            raise InvalidArgumentError("position_style='after_padding' needs pad_token_id")
        self.position_style = position_style
        self.pad_token_id = pad_token_id
        self.word = nn.Embedding(vocab_size, hidden_size, padding_idx=pad_token_id)
        self.position = nn.Embedding(max_positions, hidden_size)
        self.token_type = nn.Embedding(type_vocab_size, hidden_size) if type_vocab_size > 0 else None
        self.norm = nn.LayerNorm(hidden_size, eps=eps)
        self.drop = nn.Dropout(dropout)

    def positions(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Each token's position index, ``[batch, length]`` (or ``[length]`` for absolute positions)."""
        if self.position_style == "after_padding":
            not_pad = input_ids.ne(self.pad_token_id).int()
            return (torch.cumsum(not_pad, dim=1, dtype=torch.int32) * not_pad + self.pad_token_id).long()
        return torch.arange(input_ids.shape[1], device=input_ids.device)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return self._embed(input_ids, self.positions(input_ids), token_type_ids)

    def forward_packed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None,
                       index: torch.Tensor) -> torch.Tensor:
        """The embeddings of the tokens at `index` of the flattened ``[batch, length]`` batch: ``[tokens, hidden]``."""
        positions = self.positions(input_ids).expand_as(input_ids).reshape(-1)[index]
        types = None if token_type_ids is None else token_type_ids.reshape(-1)[index]
        return self._embed(input_ids.reshape(-1)[index], positions, types)

    def _embed(self, input_ids: torch.Tensor, positions: torch.Tensor,
               token_type_ids: torch.Tensor | None) -> torch.Tensor:
        x = self.word(input_ids) + self.position(positions)
        if self.token_type is not None:
            if token_type_ids is None:
                x = x + self.token_type.weight[0]
            else:
                x = x + self.token_type(token_type_ids)
        return self.drop(self.norm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention: one QKV matmul, one fused attention kernel for all heads."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if hidden_size % num_heads:
            raise InvalidArgumentError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size)
        self.proj = nn.Linear(hidden_size, hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(x).view(batch, length, 3, self.num_heads, width // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(batch, length, width))

    def forward_packed(self, x: torch.Tensor, layout: Packing) -> torch.Tensor:
        """`forward` on packed tokens ``[tokens, hidden]``: attention runs in the padded layout of `layout`."""
        width = x.shape[-1]
        qkv = self.qkv(x)
        # padding rows stay zero: masked keys must hold finite values
        padded = qkv.new_zeros(layout.batch * layout.length, 3 * width).index_copy_(0, layout.index, qkv)
        q, k, v = padded.view(layout.batch, layout.length, 3, self.num_heads, width // self.num_heads
                              ).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=layout.mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(layout.batch * layout.length, width).index_select(0, layout.index)
        return self.proj(out)


class Packing:
    """Where the real tokens of a padded ``[batch, length]`` batch sit: their flat indices and the key mask."""

    def __init__(self, attention_mask: torch.Tensor) -> None:
        self.batch, self.length = attention_mask.shape
        self.index = attention_mask.reshape(-1).nonzero().squeeze(1)
        self.mask = attention_mask.bool()[:, None, None, :]

    def unpack(self, x: torch.Tensor) -> torch.Tensor:
        """``[tokens, hidden]`` -> ``[batch, length, hidden]``, zeros at the padding."""
        padded = x.new_zeros(self.batch * self.length, x.shape[-1]).index_copy_(0, self.index, x)
        return padded.view(self.batch, self.length, -1)


class FeedForward(nn.Module):
    def __init__(self, hidden_size: int, intermediate_size: int, act: str) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden_size, intermediate_size)
        self.fc2 = nn.Linear(intermediate_size, hidden_size)
        self.act_name = act
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    """Post-norm block: ``x = norm(x + attn(x)); x = norm(x + mlp(x))`` (BERT's layout)."""

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int, act: str, eps: float,
                 dropout: float, attention_dropout: float) -> None:
        super().__init__()
        self.attn = SelfAttention(hidden_size, num_heads, attention_dropout)
        self.attn_norm = nn.LayerNorm(hidden_size, eps=eps)
        self.mlp = FeedForward(hidden_size, intermediate_size, act)
        self.mlp_norm = nn.LayerNorm(hidden_size, eps=eps)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        x = self.attn_norm(x + self.drop(self.attn(x, mask)))
        return self.mlp_norm(x + self.drop(self.mlp(x)))

    def forward_packed(self, x: torch.Tensor, layout: Packing) -> torch.Tensor:
        x = self.attn_norm(x + self.drop(self.attn.forward_packed(x, layout)))
        return self.mlp_norm(x + self.drop(self.mlp(x)))


def masked_mean(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of the hidden states ``[B, T, D]`` of real tokens (``attention_mask`` 1) -> ``[B, D]``."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


class Pooler(nn.Module):
    """Sequence -> one vector: first token (optionally dense + activation) or masked mean.

    Mean pooling averages the hidden states of real tokens only, as sentence-transformers
    does; ``normalize`` then scales each vector to unit L2 norm. ``mode="none"`` keeps
    every token (token classification).
    """

    def __init__(self, mode: str, hidden_size: int, *, dense: bool = False, act: str = "tanh",
                 dropout: float = 0.0, normalize: bool = False) -> None:
        super().__init__()
        if mode not in POOLINGS:
            raise InvalidArgumentError(f"pooling must be one of {POOLINGS}, got {mode!r}")
        if dense and mode != "cls":
            raise InvalidArgumentError("a dense pooler layer needs pooling='cls'")
        self.mode = mode
        self.normalize = normalize
        self.drop = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size) if dense else None
        self.act_name = act
        self.act = activation(act)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        if self.mode == "none":
            pooled = hidden
        elif self.mode == "cls":
            pooled = hidden[:, 0]
            if self.dense is not None:
                pooled = self.act(self.dense(self.drop(pooled)))
        else:
            pooled = masked_mean(hidden, attention_mask)
        if self.normalize:
            pooled = F.normalize(pooled, p=2.0, dim=-1)
        return pooled


class DenseHead(nn.Module):
    """A classifier head with its own dense layer: ``out(drop(act(dense(x))))``.

    transformers' DistilBERT and RoBERTa classifiers pass the first token through a dense layer that the base
    checkpoints do not hold (``pre_classifier``, ``classifier.dense``). Built fresh, that layer belongs with the
    output layer: it sits under the card's ``head`` path, so freezing the backbone, LoRA, layer-wise rates and
    the feature cache (which records what the head reads: the first token's state) all treat it as the head.
    `out` is the last Linear, the one `zoo.finetune.reset_head` replaces.
    """

    def __init__(self, hidden_size: int, num_classes: int, act: str, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.act_name = act
        self.act = activation(act)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.drop(self.act(self.dense(x))))


class TextTransformer(nn.Module):
    """Encoder + pooler + head for one of `TASKS`.

    ``forward(input_ids, attention_mask=None, token_type_ids=None)`` returns logits
    (``[batch, classes]``, or ``[batch, length, classes]`` for token classification) or,
    with ``num_classes=0``, the pooled features. `forward_features` returns the last hidden
    states ``[batch, length, hidden]``. In eval mode a padded batch runs packed (see the module's
    docstring) unless ``packed_inference`` is False.

    ``pooler_dense`` passes the first token through a dense layer and ``pooler_activation`` before the
    output layer, as transformers' ``*ForSequenceClassification`` classes do. Where that layer sits follows
    where its weights come from: in ``pooler`` when the checkpoint holds it (BERT's pre-trained pooler, a
    fine-tuned classifier's own), in ``head`` (`DenseHead`) with ``pooler_in_head`` when it is new and must
    train with the output layer.
    """

    packed_inference: bool = True

    def __init__(
        self,
        *,
        vocab_size: int = 30522,
        hidden_size: int = 768,
        num_layers: int = 12,
        num_heads: int = 12,
        intermediate_size: int = 3072,
        max_positions: int = 512,
        type_vocab_size: int = 2,
        pad_token_id: int | None = 0,
        layer_norm_eps: float = 1e-12,
        hidden_act: str = "gelu",
        dropout: float = 0.1,
        attention_dropout: float = 0.1,
        position_style: str = "absolute",
        task: str = "text-classification",
        pooling: str | None = None,
        pooler_dense: bool = False,
        pooler_in_head: bool = False,
        pooler_activation: str = "tanh",
        pooler_dropout: float = 0.0,
        normalize: bool = False,
        num_classes: int = 0,
        classifier_dropout: float | None = None,
    ) -> None:
        super().__init__()
        if task not in TASKS:
            raise InvalidArgumentError(f"task must be one of {TASKS}, got {task!r}")
        pooling = pooling or {"text-classification": "cls", "feature-extraction": "mean",
                              "token-classification": "none"}[task]
        if (task == "token-classification") != (pooling == "none"):
            raise InvalidArgumentError(f"task {task!r} does not go with pooling {pooling!r}")
        self.task = task
        self.num_features = hidden_size
        self.embeddings = Embeddings(vocab_size, hidden_size, max_positions, type_vocab_size, pad_token_id,
                                     layer_norm_eps, dropout, position_style)
        self.layers = nn.ModuleList(
            EncoderLayer(hidden_size, num_heads, intermediate_size, hidden_act, layer_norm_eps, dropout,
                         attention_dropout)
            for _ in range(num_layers)
        )
        head_dropout = dropout if classifier_dropout is None else classifier_dropout
        # A fresh dense layer (pooler_in_head) is built into the head with the output layer; without classes there
        # is no head, and the model returns the first token's state (what a later head reads).
        dense_in_head = pooler_dense and pooler_in_head and num_classes > 0
        if pooler_dense and pooling != "cls":
            raise InvalidArgumentError("a dense pooler layer needs pooling='cls'")
        self.pooler = Pooler(pooling, hidden_size, dense=pooler_dense and not pooler_in_head, act=pooler_activation,
                             dropout=0.0 if pooler_in_head else pooler_dropout, normalize=normalize)
        self.head: nn.Module
        if dense_in_head:  # the dropout before the dense layer, then the head's own after its activation
            self.head_drop = nn.Dropout(pooler_dropout)
            self.head = DenseHead(hidden_size, num_classes, pooler_activation, head_dropout)
        else:
            self.head_drop = nn.Dropout(head_dropout)
            self.head = nn.Linear(hidden_size, num_classes) if num_classes else nn.Identity()
        self.apply(_init_weights)

    def forward_features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Last hidden states ``[batch, length, hidden]``."""
        return self._encode(input_ids, attention_mask, token_type_ids, (), stop=len(self.layers))[0]

    @property
    def num_intermediates(self) -> int:
        """The encoder layers `forward_intermediates` chooses from."""
        return len(self.layers)

    def forward_intermediates(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None, *, indices: int | Sequence[int] | None = None,
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Hidden states ``[batch, length, hidden]`` after the encoder layers at `indices` (timm's semantics:
        None for all, an int for the last n, a list of indices), computed with the attention mask.

        Returns them in the order asked, or ``(last hidden states, list)`` unless `intermediates_only`
        (then the layers after the last one asked for do not run). The embeddings are not a layer.
        """
        taken = take_indices(len(self.layers), indices, what="encoder layers")
        last, hidden = self._encode(input_ids, attention_mask, token_type_ids, taken,
                                    stop=max(taken) + 1 if intermediates_only else len(self.layers))
        return hidden if intermediates_only else (last, hidden)

    def pooled_intermediates(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                             token_type_ids: torch.Tensor | None = None, *,
                             indices: int | Sequence[int] | None = None) -> list[torch.Tensor]:
        """`forward_intermediates` averaged over the real tokens (attention mask): ``[batch, hidden]`` each."""
        taken = take_indices(len(self.layers), indices, what="encoder layers")
        _, hidden = self._encode(input_ids, attention_mask, token_type_ids, taken, stop=max(taken) + 1)
        return [masked_mean(h, attention_mask) for h in hidden]

    def _encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                token_type_ids: torch.Tensor | None, taken: Sequence[int], stop: int,
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The hidden states after layer ``stop - 1``, and those after the layers `taken`, in that order."""
        x = self.embeddings(input_ids, token_type_ids)
        mask = _key_mask(attention_mask)
        found: dict[int, torch.Tensor] = {}
        for index, layer in enumerate(self.layers[:stop]):
            x = layer(x, mask)
            if index in taken:
                found[index] = x
        return x, [found[i] for i in taken]

    def forward_head(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Pool the hidden states (unless token classification) and apply the head."""
        return self.head(self.head_drop(self.pooler(hidden, attention_mask)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        if self._packs(attention_mask):
            assert attention_mask is not None  # _packs says so
            hidden = self.forward_packed(input_ids, attention_mask, token_type_ids)
        else:
            hidden = self.forward_features(input_ids, attention_mask, token_type_ids)
        return self.forward_head(hidden, attention_mask)

    def forward_packed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                       token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """`forward_features` computed on the real tokens only; zeros at the padding."""
        layout = Packing(attention_mask)
        x = self.embeddings.forward_packed(input_ids, token_type_ids, layout.index)
        for layer in self.layers:
            x = layer.forward_packed(x, layout)
        return layout.unpack(x)

    def _packs(self, attention_mask: torch.Tensor | None) -> bool:
        """Whether `forward` runs packed: in eval mode, on a batch with padding, outside tracing and compiling."""
        if not self.packed_inference or self.training or attention_mask is None or attention_mask.dim() != 2:
            return False
        if torch.jit.is_tracing() or torch.compiler.is_compiling() or attention_mask.device.type == "meta":
            return False
        return not bool(attention_mask.all())


def _key_mask(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """``[batch, length]`` 1/0 mask -> boolean ``[batch, 1, 1, length]`` (True attends), or None if no padding."""
    if attention_mask is None:
        return None
    if not torch.compiler.is_compiling() and attention_mask.device.type != "meta" and bool(attention_mask.all()):
        return None  # no padding: let attention take its unmasked (faster) path
    return attention_mask.bool()[:, None, None, :]


@torch.no_grad()
def _init_weights(module: nn.Module) -> None:
    """BERT's initialisation: normal(0, 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


# The builder cards name: every keyword of `TextTransformer` is a plain value a card's
# ``defaults`` can hold, and the defaults are BERT-base's.
build_text_transformer = TextTransformer
