"""The ``encodec`` codec's pydantic config: free of torch, so plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from magnetkit import ChunkedDecoding


class EncodecCodecConfig(ChunkedDecoding):
    """Parameters of the ``encodec`` codec (the recipe's ``codec`` section)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("facebook/encodec_32khz", description=(
        "hub id (facebook/encodec_24khz, _32khz, _48khz), transformers folder, or audiocraft "
        "compression_state_dict.bin (file, or a folder or hub repo holding one)"))
    num_codebooks: int | None = Field(None, ge=1, description="codebooks to use (fewer = lower bandwidth); None = all")
