"""An exponential moving average (EMA) of a model's weights, updated after every optimizer step.

After each step every floating-point parameter and buffer ``w`` moves its average ``a`` to
``decay * a + (1 - decay) * w``; other buffers (BatchNorm's batch counter) are copied. BatchNorm's
running statistics are averaged like the weights, as timm's ``ModelEmaV2`` does. The average
starts from the weights the run starts with. `applied` puts the averaged weights into the model
for a while (to evaluate or save them) and gives the trained ones back afterwards.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn


class WeightAverage:
    """The EMA of `model`'s state (every entry of its ``state_dict``, by name)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self._live = dict(model.state_dict(keep_vars=True))  # the model's own tensors, updated in place by training
        self.average = {name: tensor.detach().clone() for name, tensor in self._live.items()}
        self._floats = [name for name, tensor in self._live.items() if tensor.is_floating_point()]
        self._others = [name for name in self._live if name not in set(self._floats)]

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average (call after the optimizer's step)."""
        if self._floats:
            averages = [self.average[name] for name in self._floats]
            torch._foreach_lerp_(averages, [self._live[name].detach() for name in self._floats], 1.0 - self.decay)
        for name in self._others:
            self.average[name].copy_(self._live[name])

    @contextlib.contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its trained ones again after it."""
        trained = {name: tensor.detach().clone() for name, tensor in self._live.items()}
        for name, tensor in self._live.items():
            tensor.data.copy_(self.average[name])
        try:
            yield
        finally:
            for name, tensor in self._live.items():
                tensor.data.copy_(trained[name])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {name: tensor.cpu() for name, tensor in self.average.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        missing = sorted(set(self.average) - set(state))
        if missing:
            raise KeyError(f"the saved weight average lacks {missing[0]!r}")
        for name, tensor in self.average.items():
            tensor.copy_(state[name])
