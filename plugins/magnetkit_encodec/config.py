"""The ``encodec`` codec's pydantic config: free of torch, so plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

class EncodecCodecConfig(BaseModel):
    """Parameters of the ``encodec`` codec (the recipe's ``codec`` section)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("facebook/encodec_32khz", description=(
        "hub id (facebook/encodec_24khz, _32khz, _48khz), transformers folder, or audiocraft "
        "compression_state_dict.bin (file, or a folder or hub repo holding one)"))
    num_codebooks: int | None = Field(None, ge=1, description="codebooks to use (fewer = lower bandwidth); None = all")
    chunk_seconds: float | None = Field(30.0, gt=0, description=(
        "decode longer code sequences window by window, this many seconds each; None = always in one shot"))
    chunk_context_seconds: float = Field(1.0, ge=0, description="context decoded and dropped on each side of a window")
