"""magnetkit built-in plugin: the samplers (top_p, top_k, greedy).

Each turns one decoding step's guided logits into tokens and their confidences, with the
temperature annealed linearly over the stage; see `TemperatureSampler` for the contract.
"""

from __future__ import annotations

from magnetkit import MIN_TEMPERATURE, DrawingConfig, SamplerConfig, TemperatureSampler, annealed_temperature, hookimpl
from magnetkit_samplers.greedy import GreedyConfig, GreedySampler
from magnetkit_samplers.top_k import TopKConfig, TopKSampler
from magnetkit_samplers.top_p import TopPConfig, TopPSampler

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


@hookimpl
def register_samplers(register) -> None:
    """Register the top-p, top-k and greedy samplers."""
    register("top_p", TopPSampler, config=TopPConfig,
             description="nucleus sampling at an annealed temperature (MAGNeT's default)")
    register("top_k", TopKSampler, config=TopKConfig,
             description="sampling among the k most probable tokens at an annealed temperature")
    register("greedy", GreedySampler, config=GreedyConfig,
             description="the most probable token; confidences at the annealed temperature")
