"""The MAGNeT transformer's configuration: the recipe's ``model`` section."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelConfig(BaseModel):
    """Architecture of the MAGNeT transformer (audiocraft's ``transformer_lm`` settings)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    dim: int = Field(1024, gt=0, description="model width")
    num_heads: int = Field(16, gt=0)
    num_layers: int = Field(24, gt=0)
    hidden_scale: float = Field(4.0, gt=0, description="feed-forward width = hidden_scale * dim")
    num_codebooks: int = Field(4, gt=0, description="K, audiocraft's n_q")
    cardinality: int = Field(2048, gt=1, description="codebook size; the mask token id equals it")
    subcodes_context: int = Field(5, ge=-1, description="±frames seen by codebooks above the first; -1 = all")
    activation: Literal["gelu"] = "gelu"
    norm_eps: float = Field(1e-5, gt=0)
    bias_ff: bool = False
    bias_attn: bool = False
    bias_proj: bool = False
    positional_embedding: Literal["sin", "rope", "sin_rope"] = Field(
        "sin", description="audiocraft's positions: sinusoids added to the input (sin, every published MAGNeT), "
                           "rotary queries and keys in self-attention (rope, Su et al. 2021), or both (sin_rope)")
    max_period: float = Field(10_000.0, gt=0, description="longest period of the sinusoidal and rotary positions")
    positional_scale: float = Field(1.0, gt=0, description="audiocraft's positional_scale: the sinusoids are "
                                    "multiplied by it before they are added (1 in every published MAGNeT)")
    dropout: float = Field(0.0, ge=0, lt=1)
    frame_rate: float = Field(50.0, gt=0, description="codec frames per second the model was trained at")
    segment_duration: float = Field(10.0, gt=0, description="training window in seconds")

    @model_validator(mode="after")
    def _heads_divide_dim(self) -> "ModelConfig":
        if self.dim % self.num_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")
        if self.rotary_positions and (self.dim // self.num_heads) % 2:
            raise ValueError(f"rotary positions need an even head width, got dim / num_heads = "
                             f"{self.dim // self.num_heads}")
        return self

    @property
    def sin_positions(self) -> bool:
        """Whether sinusoidal positions are added to the input embeddings."""
        return self.positional_embedding in ("sin", "sin_rope")

    @property
    def rotary_positions(self) -> bool:
        """Whether self-attention rotates its queries and keys by position (RoPE)."""
        return self.positional_embedding in ("rope", "sin_rope")

    @property
    def mask_id(self) -> int:
        """The mask token: the last row of each ``cardinality + 1``-row embedding."""
        return self.cardinality
