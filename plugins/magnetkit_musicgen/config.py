"""The ``musicgen`` rescorer's pydantic config: free of torch, so plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

class MusicgenConfig(BaseModel):
    """Parameters of the ``musicgen`` rescorer (the recipe's ``rescorer`` section)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str = Field("facebook/musicgen-small", description=(
        "hub id or folder of a transformers MusicgenForConditionalGeneration with its tokenizer "
        "(mono; e.g. facebook/musicgen-small, -medium, -large)"))
    weight: float = Field(0.8, ge=0, le=1, description=(
        "w in paper Eq. 5, p = w * p_magnet + (1 - w) * p_musicgen; 1 = MAGNeT alone (no rescoring)"))
    stages: list[int] | None = Field(None, description="codebook stages where rescoring applies (null = all)")
    steps: list[int] | None = Field(None, description="decoding steps (from 0) where rescoring applies (null = all)")
    guidance_scale: float = Field(1.0, ge=0, description=(
        "classifier-free guidance on MusicGen's scoring logits; 1 = its plain conditional probability "
        "(one pass; other values add a null-condition pass)"))
    temperature: float = Field(1.0, gt=0, description="temperature of MusicGen's scoring softmax")
    dtype: Literal["float32", "float16", "bfloat16"] = Field(
        "float32", description="MusicGen's weights and activations (float16/bfloat16 for GPUs only)")
