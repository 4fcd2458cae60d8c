"""The ``min_p`` sampler's parameters (pydantic, no torch: `magnetkit validate` reads only this)."""

from __future__ import annotations

from pydantic import Field

from magnetkit import SamplerConfig


class MinPConfig(SamplerConfig):
    """Parameters of the ``min_p`` sampler (the recipe's ``sampler`` section).

    `magnetkit.SamplerConfig` brings ``temperature``, ``anneal``, ``span_scoring`` and
    ``stage_temperatures`` with their defaults and checks; this adds only ``min_p``.
    """

    min_p: float = Field(0.1, gt=0, le=1, description=(
        "keep the tokens whose probability is at least min_p times the most probable token's"))
