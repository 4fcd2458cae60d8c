"""The recipe's ``data`` and ``train`` sections."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class DataConfig(BaseModel):
    """Where training audio and captions come from."""

    model_config = ConfigDict(extra="forbid")

    train: str = Field(..., description="a JSONL manifest or a folder of audio with sidecar .json captions")
    valid: str | None = Field(None, description="validation manifest or folder")
    segment_duration: float = Field(10.0, gt=0, description="seconds per random crop")


class TrainConfig(BaseModel):
    """Optimisation settings (paper §4: AdamW, betas 0.9/0.95, weight decay 0.1, cosine schedule)."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1000, gt=0)
    batch_size: int = Field(8, gt=0)
    lr: float = Field(5e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = Field(0.1, ge=0)
    warmup_steps: int = Field(100, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    cfg_dropout: float = Field(0.3, ge=0, le=1, description="condition dropout for classifier-free guidance")
    seed: int = 0
    out_dir: str = "runs/train"
