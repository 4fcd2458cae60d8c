"""The ``dac`` codec's pydantic config: free of torch, so plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from magnetkit import ChunkedDecoding


class DacCodecConfig(ChunkedDecoding):
    """Parameters of the ``dac`` codec (the recipe's ``codec`` section)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("descript/dac_44khz", description=(
        "hub id (descript/dac_16khz, dac_24khz, dac_44khz) or a transformers folder (config.json + weights)"))
    num_codebooks: int | None = Field(None, ge=1, description="codebooks to use (fewer = lower bitrate); None = all")
    # DAC's decoder sees about 0.1 s on each side: less context than the core default suffices.
    chunk_context_seconds: float = Field(0.5, ge=0, description=(
        "context decoded and dropped on each side of a window (the decoder sees about 0.1 s)"))
