"""The ``min_p`` sampler's parameters (pydantic, no torch: `magnetkit validate` reads only this)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class MinPConfig(BaseModel):
    """Parameters of the ``min_p`` sampler (the recipe's ``sampler`` section)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    min_p: float = Field(0.1, gt=0, le=1, description=(
        "keep the tokens whose probability is at least min_p times the most probable token's"))
    temperature: float = Field(3.0, gt=0, description="softmax temperature at a stage's first step")
    anneal: bool = Field(True, description="decay the temperature linearly towards 0 over each stage's steps")
    stage_temperatures: list[float] | None = Field(
        None, description="a starting temperature per codebook stage, in place of `temperature`")
    span_scoring: Literal["max", "prod"] = Field("max", description="how token confidences become span scores")

    @field_validator("stage_temperatures")
    @classmethod
    def _positive(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and (not values or any(not v > 0 for v in values)):
            raise ValueError("needs one positive temperature per codebook stage")
        return values
