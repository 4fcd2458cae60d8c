"""The schedulers' pydantic configs, free of torch: plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from pydantic import Field

from magnetkit import SchedulerConfig


class CosineConfig(SchedulerConfig):
    """Parameters of the cosine scheduler (only the span parameters)."""


class LinearConfig(SchedulerConfig):
    """Parameters of the linear scheduler (only the span parameters)."""


class PowerConfig(SchedulerConfig):
    """Parameters of the power scheduler."""

    exponent: float = Field(2.0, gt=0, description="p in gamma(t) = 1 - t^p; above 1 keeps more masked early")
