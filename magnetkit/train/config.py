"""The recipe's ``data`` and ``train`` sections: every training default lives here, once.

Hyper-parameter defaults follow the paper (§4, "Implementation details") and audiocraft's
MAGNeT solver: AdamW with betas (0.9, 0.95) and weight decay 0.1, gradient clipping at 1.0, a
cosine schedule with warm-up, an EMA of the weights with decay 0.99, condition dropout 0.3.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError


class DataConfig(BaseModel):
    """Where training audio and captions come from, and where their tokens are cached."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    train: str = Field(..., description="a JSONL manifest (path, caption, metadata), a folder holding "
                                        "manifest.jsonl, or a folder of audio with sidecar .json captions")
    valid: str | None = Field(None, description="validation manifest or folder; null = no validation loss")
    cache: str | None = Field(None, description="token cache folder, shared by runs with the same codec; "
                                                "null = <train.out_dir>/tokens")
    shard_size: int = Field(256, gt=0, description="audio files per cache shard (the unit of resumable encoding)")
    min_segment_ratio: float = Field(0.5, ge=0, le=1, description=(
        "files shorter than this fraction of model.segment_duration are left out; shorter crops are "
        "padded and the padding takes no loss (audiocraft's min_segment_ratio)"))


class TrainConfig(BaseModel):
    """Optimisation, logging and checkpointing of one training run."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # -- optimisation (paper §4) -------------------------------------------------------------
    steps: int = Field(1000, gt=0, description="optimizer steps in the whole run")
    batch_size: int = Field(8, gt=0, description="global batch: rows per optimizer step over every process")
    grad_accum: int = Field(1, gt=0, description="micro-batches per optimizer step on each process")
    lr: float = Field(5e-4, gt=0, description="peak learning rate")
    lr_min_ratio: float = Field(0.0, ge=0, le=1, description="final learning rate as a fraction of lr")
    warmup_steps: int = Field(100, ge=0, description="linear warm-up before the cosine decay")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas")
    weight_decay: float = Field(0.1, ge=0, description="AdamW decoupled weight decay")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping norm")
    cfg_dropout: float = Field(0.3, ge=0, le=1, description="condition dropout for classifier-free guidance")
    stage_weights: list[float] | None = Field(None, description=(
        "how often each codebook stage is trained, relative to the others (one weight per codebook); "
        "null = uniform, as audiocraft draws them. [4, 1, 1, 1] trains the first, coarsest stage 4x as often"))
    continuation_masking: float = Field(0.0, ge=0, le=1, description=(
        "share of training rows whose mask also covers every frame from a random one on, so the model "
        "learns to continue from the left context alone (span masks almost never hide a whole ending); "
        "0 = MAGNeT's span masks only"))
    ema_decay: float | None = Field(0.99, gt=0, lt=1, description="EMA of the weights; null = none")
    ema_every: int = Field(10, gt=0, description="steps between EMA updates (audiocraft: 10)")
    precision: Literal["fp32", "bf16", "fp16"] = Field(
        "bf16", description="autocast dtype on GPU (fp16 adds loss scaling); CPU always trains in fp32")
    seed: int = Field(0, ge=0, description="seeds initialisation, data order, crops, masks and dropout")

    # -- where and how -----------------------------------------------------------------------
    out_dir: str = Field("runs/train", description="checkpoints, logs, samples and the final model")
    init_from: str | None = Field(None, description="starting weights: a magnetkit or audiocraft folder, or a hub id")
    distributed: Literal["ddp", "fsdp"] = Field("ddp", description="data parallelism under torchrun; "
                                                                  "fsdp shards weights for large models")
    device: str | None = Field(None, description="cpu or cuda; null = cuda when available "
                                                 "(each torchrun process takes cuda:LOCAL_RANK)")

    # -- checkpoints, logs, validation, samples ------------------------------------------------
    save_every: int = Field(1000, gt=0, description="steps between checkpoints (one is also written at the end)")
    keep_last: int = Field(3, gt=0, description="checkpoints kept; older ones are deleted")
    log_every: int = Field(10, gt=0, description="steps between metric lines (averaged over them)")
    valid_every: int = Field(1000, gt=0, description="steps between validation losses (and at the end)")
    valid_items: int | None = Field(None, gt=0, description="validate on at most this many files; null = all")
    generate_every: int | None = Field(None, gt=0, description="steps between sample generations; null = never")
    sample_texts: list[str] = Field(default_factory=list, description=(
        "captions to generate samples from; empty = the first captions of the validation (or training) data"))
    num_samples: int = Field(2, gt=0, description="samples per generation when sample_texts is empty")
    tensorboard: bool = Field(True, description="also write TensorBoard events to <out_dir>/tensorboard")
    progress: bool = Field(True, description="show a progress bar")
    export_audiocraft: bool = Field(False, description="also export the final model in audiocraft's format")

    @field_validator("stage_weights")
    @classmethod
    def _usable_weights(cls, weights: list[float] | None) -> list[float] | None:
        if weights is not None and (any(w < 0 for w in weights) or sum(weights) <= 0):
            raise PydanticCustomError("stage_weights", "weights must be >= 0 with a positive sum, got {weights}",
                                      {"weights": weights})
        return weights

    @field_validator("warmup_steps")
    @classmethod
    def _warmup_within_run(cls, warmup: int, info: ValidationInfo) -> int:
        steps = info.data.get("steps")
        if steps is not None and warmup > steps:
            raise PydanticCustomError("warmup", "must not exceed train.steps ({steps})", {"steps": steps})
        return warmup
