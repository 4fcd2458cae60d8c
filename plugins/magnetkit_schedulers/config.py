"""The schedulers' pydantic configs, free of torch: plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SchedulerConfig(BaseModel):
    """Span parameters common to every built-in scheduler."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    span_len: int = Field(3, ge=1, description="frames per masked span (3 = 60 ms at 50 Hz, paper §3)")
    arrangement: Literal["nonoverlap", "stride1"] = Field(
        "nonoverlap",
        description="decoding spans: 'nonoverlap' = fixed chunks of span_len frames; "
                    "'stride1' = overlapping spans starting at any frame",
    )


class CosineConfig(SchedulerConfig):
    """Parameters of the cosine scheduler (only the span parameters)."""


class LinearConfig(SchedulerConfig):
    """Parameters of the linear scheduler (only the span parameters)."""


class PowerConfig(SchedulerConfig):
    """Parameters of the power scheduler."""

    exponent: float = Field(2.0, gt=0, description="p in gamma(t) = 1 - t^p; above 1 keeps more masked early")
