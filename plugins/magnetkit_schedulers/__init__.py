"""magnetkit built-in plugin: the masking schedulers (cosine, linear, power).

Each registers under its curve's name with a pydantic config of the span parameters
(``span_len``, ``arrangement``) and the curve's own; see `SpanScheduler` for the semantics.
"""

from __future__ import annotations

from magnetkit import (
    SchedulerConfig,
    SpanScheduler,
    expected_mask_rate,
    hookimpl,
    least_probable_spans,
    num_spans_table,
)
from magnetkit_schedulers.cosine import CosineConfig, CosineScheduler
from magnetkit_schedulers.linear import LinearConfig, LinearScheduler
from magnetkit_schedulers.power import PowerConfig, PowerScheduler

__all__ = [
    "CosineConfig",
    "CosineScheduler",
    "LinearConfig",
    "LinearScheduler",
    "PowerConfig",
    "PowerScheduler",
    "SchedulerConfig",
    "SpanScheduler",
    "expected_mask_rate",
    "least_probable_spans",
    "num_spans_table",
    "register_masking_schedulers",
]


@hookimpl
def register_masking_schedulers(register) -> None:
    """Register the cosine, linear and power schedulers."""
    register("cosine", CosineScheduler, config=CosineConfig,
             description="gamma(t) = cos(pi t / 2), MAGNeT's schedule (paper §3)")
    register("linear", LinearScheduler, config=LinearConfig,
             description="gamma(t) = 1 - t")
    register("power", PowerScheduler, config=PowerConfig,
             description="gamma(t) = 1 - t^exponent")
