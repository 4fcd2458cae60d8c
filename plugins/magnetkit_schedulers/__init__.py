"""magnetkit built-in plugin: the masking schedulers (cosine, linear, power).

Each registers under its curve's name with a pydantic config of the span parameters
(``span_len``, ``arrangement``) and the curve's own; see `SpanScheduler` for the semantics.
Registering imports only the torch-free configs; a scheduler's module loads when one is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit_schedulers.config import CosineConfig, LinearConfig, PowerConfig

# Public names whose modules import torch: imported on first use. name -> module.
_LAZY: dict[str, str] = {
    "CosineScheduler": "magnetkit_schedulers.cosine",
    "LinearScheduler": "magnetkit_schedulers.linear",
    "PowerScheduler": "magnetkit_schedulers.power",
    # the core's base and span maths, re-exported for existing imports
    "SchedulerConfig": "magnetkit",
    "SpanScheduler": "magnetkit",
    "expected_mask_rate": "magnetkit",
    "least_probable_spans": "magnetkit",
    "num_spans_table": "magnetkit",
}

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


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _build_cosine(config: CosineConfig, **context: Any) -> Any:
    """Build a `CosineScheduler` (its module is imported here, not at registration)."""
    from magnetkit_schedulers.cosine import CosineScheduler

    return CosineScheduler(config, **context)


def _build_linear(config: LinearConfig, **context: Any) -> Any:
    """Build a `LinearScheduler`."""
    from magnetkit_schedulers.linear import LinearScheduler

    return LinearScheduler(config, **context)


def _build_power(config: PowerConfig, **context: Any) -> Any:
    """Build a `PowerScheduler`."""
    from magnetkit_schedulers.power import PowerScheduler

    return PowerScheduler(config, **context)


@hookimpl
def register_masking_schedulers(register) -> None:
    """Register the cosine, linear and power schedulers."""
    register("cosine", _build_cosine, config=CosineConfig,
             description="gamma(t) = cos(pi t / 2), MAGNeT's schedule (paper §3)")
    register("linear", _build_linear, config=LinearConfig,
             description="gamma(t) = 1 - t")
    register("power", _build_power, config=PowerConfig,
             description="gamma(t) = 1 - t^exponent")
