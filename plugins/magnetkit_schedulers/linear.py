"""The linear schedule gamma(t) = 1 - t."""

from __future__ import annotations

import torch

from magnetkit import SpanScheduler
from magnetkit_schedulers.config import LinearConfig


class LinearScheduler(SpanScheduler):
    """Mask rate 1 - t: the same number of units is unmasked at every step."""

    def __init__(self, config: LinearConfig) -> None:
        super().__init__(config)

    def mask_rate(self, t: torch.Tensor) -> torch.Tensor:
        """gamma(t) = 1 - t in float32."""
        return 1 - self.as_time(t)
