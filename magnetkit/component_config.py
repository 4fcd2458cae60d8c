"""The pydantic configs of the core's reusable component bases, free of torch.

Plugin configs subclass these, and plugin registration and `magnetkit validate` import only
configs, so the light commands start without torch. The bases themselves (`TemperatureSampler`,
`SpanScheduler`, `WrappedCodec`) live in `magnetkit.sampling`, `.scheduling` and `.codecs`.
"""

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


class SchedulerConfig(BaseModel):
    """Span parameters common to every `SpanScheduler` (the one place their defaults live)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    span_len: int = Field(3, ge=1, description="frames per masked span (3 = 60 ms at 50 Hz, paper §3)")
    arrangement: Literal["nonoverlap", "stride1"] = Field(
        "nonoverlap",
        description="decoding spans: 'nonoverlap' = fixed chunks of span_len frames; "
                    "'stride1' = overlapping spans starting at any frame",
    )


class ChunkedDecoding(BaseModel):
    """How a `WrappedCodec` decodes long code sequences: the one place these defaults live.

    A codec plugin's config subclasses it, so the recipe's ``codec`` section takes both keys.
    """

    model_config = ConfigDict(extra="forbid")

    chunk_seconds: float | None = Field(30.0, gt=0, description=(
        "decode longer code sequences window by window, this many seconds each; None = always in one shot"))
    chunk_context_seconds: float = Field(1.0, ge=0, description="context decoded and dropped on each side of a window")
