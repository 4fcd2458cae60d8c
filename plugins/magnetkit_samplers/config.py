"""The samplers' pydantic configs, free of torch: plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SamplerConfig(BaseModel):
    """Parameters common to every built-in sampler."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: float = Field(3.0, gt=0, description="softmax temperature at a stage's first step")
    anneal: bool = Field(True, description="decay the temperature linearly to 0 over each stage's steps")
    span_scoring: Literal["max", "prod"] = Field(
        "max", description="span confidence: 'max' = most probable token, 'prod' = product of probabilities")
    stage_temperatures: list[float] | None = Field(
        None, description="a starting temperature per codebook stage, in place of `temperature` (annealed the "
                          "same way), e.g. [1.0, 0.05, 0.05, 0.05]: low temperatures for the residual codebooks")

    @field_validator("stage_temperatures")
    @classmethod
    def _positive_temperatures(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and (not values or any(not v > 0 for v in values)):
            raise ValueError("needs one positive temperature per codebook stage")
        return values


class DrawingConfig(SamplerConfig):
    """Parameters common to the samplers that draw at random (top-p, top-k)."""

    audiocraft_stream: bool = Field(
        False, description="draw with audiocraft's own operations (sort + torch.multinomial), so a seed gives "
                           "audiocraft's tokens bit for bit; several times slower. Off: the same distribution, "
                           "drawn without sorting indices or one random number per vocabulary entry")


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
