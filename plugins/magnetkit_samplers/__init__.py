"""magnetkit built-in plugin: the samplers (top_p, top_k, greedy).

Each turns one decoding step's guided logits into tokens and their confidences, with the
temperature annealed linearly over the stage; see `TemperatureSampler` for the contract.
Registering imports only the torch-free configs; a sampler's module loads when one is built.
"""

from __future__ import annotations

import importlib
from typing import Any

from magnetkit import hookimpl
from magnetkit import DrawingConfig, SamplerConfig  # noqa: F401 (re-exported)
from magnetkit_samplers.config import GreedyConfig, TopKConfig, TopPConfig

# Public names whose modules import torch (or numba): imported on first use. name -> module.
_LAZY: dict[str, str] = {
    "GreedySampler": "magnetkit_samplers.greedy",
    "TopKSampler": "magnetkit_samplers.top_k",
    "TopPSampler": "magnetkit_samplers.top_p",
    # the core's base, re-exported for existing imports
    "MIN_TEMPERATURE": "magnetkit",
    "TemperatureSampler": "magnetkit",
    "annealed_temperature": "magnetkit",
}

__all__ = [
    "MIN_TEMPERATURE",
    "DrawingConfig",
    "GreedyConfig",
    "GreedySampler",
    "SamplerConfig",
    "TemperatureSampler",
    "TopKConfig",
    "TopKSampler",
    "TopPConfig",
    "TopPSampler",
    "annealed_temperature",
    "register_samplers",
]


def __getattr__(name: str) -> Any:
    """Import a heavy public name on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def _build_top_p(config: TopPConfig, **context: Any) -> Any:
    """Build a `TopPSampler` (its module is imported here, not at registration)."""
    from magnetkit_samplers.top_p import TopPSampler

    return TopPSampler(config, **context)


def _build_top_k(config: TopKConfig, **context: Any) -> Any:
    """Build a `TopKSampler`."""
    from magnetkit_samplers.top_k import TopKSampler

    return TopKSampler(config, **context)


def _build_greedy(config: GreedyConfig, **context: Any) -> Any:
    """Build a `GreedySampler`."""
    from magnetkit_samplers.greedy import GreedySampler

    return GreedySampler(config, **context)


@hookimpl
def register_samplers(register) -> None:
    """Register the top-p, top-k and greedy samplers."""
    register("top_p", _build_top_p, config=TopPConfig,
             description="nucleus sampling at an annealed temperature (MAGNeT's default)")
    register("top_k", _build_top_k, config=TopKConfig,
             description="sampling among the k most probable tokens at an annealed temperature")
    register("greedy", _build_greedy, config=GreedyConfig,
             description="the most probable token; confidences at the annealed temperature")
