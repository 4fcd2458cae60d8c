"""The samplers' pydantic configs, free of torch: plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations


from pydantic import Field

from magnetkit import DrawingConfig, SamplerConfig


class GreedyConfig(SamplerConfig):
    """Parameters of the greedy sampler; the temperature still shapes the confidences."""


class TopKConfig(DrawingConfig):
    """Parameters of the top-k sampler."""

    top_k: int = Field(250, ge=1, description="sample among this many most probable tokens")


class TopPConfig(DrawingConfig):
    """Parameters of the top-p sampler."""

    top_p: float = Field(0.9, gt=0, le=1, description="keep the most probable tokens holding this share of the mass")
    cpu_kernel: bool = Field(
        True, description="on a CPU, draw with the compiled loop of magnetkit_samplers.kernels (no sort; the same "
                          "distribution as the sorting draw, another random stream); off: the sorting draw")
