"""The ``clap`` conditioner's pydantic config: free of torch, so plugin registration and `magnetkit validate` import only this."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

class ClapConditionerConfig(BaseModel):
    """Parameters of the ``clap`` conditioner (the recipe's ``conditioner`` section)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("laion/larger_clap_music", description="hub id or transformers folder of a ClapModel "
                       "with its tokenizer and feature extractor")
    normalize: bool = Field(True, description="re-normalise the embedding to unit norm after averaging audio windows")
    max_text_tokens: int = Field(77, gt=2, description="texts are truncated to this many tokens (CLAP's 77)")
    audio_window_seconds: float | None = Field(None, gt=0, description=(
        "audio longer than this is embedded in windows and averaged; None = the feature extractor's max length"))
    audio_stride_seconds: float = Field(1.0, gt=0, description="hop between audio windows")
    audio_batch_size: int = Field(8, gt=0, description="audio windows embedded per CLAP call")
