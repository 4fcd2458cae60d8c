"""The power schedule gamma(t) = 1 - t^p (p = 2 is MaskGIT's "square"; p = 1 is linear)."""

from __future__ import annotations

import torch

from magnetkit import SpanScheduler
from magnetkit_schedulers.config import PowerConfig


class PowerScheduler(SpanScheduler):
    """Mask rate 1 - t^p."""

    def __init__(self, config: PowerConfig) -> None:
        super().__init__(config)
        self.exponent = config.exponent

    def mask_rate(self, t: torch.Tensor) -> torch.Tensor:
        """gamma(t) = 1 - t^p in float32."""
        return 1 - self.as_time(t) ** self.exponent
