"""Optimiser, learning-rate schedule and weight EMA (paper §4; audiocraft's solver settings)."""

from __future__ import annotations

import contextlib
import math
from typing import Iterator

import torch
from torch import nn

from magnetkit.train.config import TrainConfig
from magnetkit.train.distributed import full_tensor, shard_like


def build_optimizer(module: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over every trainable parameter, decay on all of them as audiocraft applies it."""
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to 1 over ``warmup`` steps, then cosine decay to ``min_ratio`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup  # the first step already learns (audiocraft's starts at lr 0)
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def build_lr_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    """The cosine schedule with warm-up as a LambdaLR (its state is the step count)."""
    def factor(step: int) -> float:
        return lr_factor(step, config.warmup_steps, config.steps, config.lr_min_ratio)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


class EMA:
    """Exponential moving average of the weights, bias-corrected (audiocraft's ModuleDictEMA, unbias=True).

    With ``count`` the decayed number of updates, each update moves the average by ``1 / count``:
    the first update copies the weights, so early averages are not pulled towards initialisation.
    Kept in float32, laid out like the parameters (sharded under FSDP).
    """

    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.count = 0.0
        self.state = {name: p.detach().float().clone() for name, p in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        """Fold the current weights into the average."""
        self.count = self.count * self.decay + 1
        weight = 1 / self.count
        for name, p in module.named_parameters():
            self.state[name].mul_(1 - weight).add_(p.detach().float(), alpha=weight)

    def full_state(self, keep: bool = True) -> dict[str, torch.Tensor]:
        """The average as whole CPU tensors, or {} where not ``keep`` (collective under FSDP)."""
        state = {}
        for name, value in self.state.items():
            whole = full_tensor(value)  # every process takes part in gathering a shard
            if keep:
                state[name] = whole.cpu()
        return state

    def state_dict(self, keep: bool = True) -> dict[str, object]:
        """``{"count", "state"}`` with whole tensors (see `full_state`)."""
        return {"count": self.count, "state": self.full_state(keep)}

    def load_state_dict(self, saved: dict[str, object]) -> None:
        """Restore a `state_dict` (collective under FSDP)."""
        self.count = float(saved["count"])
        state = saved["state"]
        self.state = {name: shard_like(state[name], value) for name, value in self.state.items()}

    @contextlib.contextmanager
    def applied(self, module: nn.Module) -> Iterator[None]:
        """Swap the averaged weights into ``module`` for the duration (validation, samples)."""
        params = dict(module.named_parameters())
        backup = {name: p.detach().clone() for name, p in params.items()}
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(self.state[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in params.items():
                    p.copy_(backup[name])
