"""MusicGen's delay pattern (audiocraft's ``DelayedPatternProvider``), as small pure functions.

Codebook k of frame f sits in column f + k of the delayed sequence, so one autoregressive step
predicts codebook 0 of a new frame together with the higher codebooks of earlier frames. A
sequence of T frames and K codebooks has T + K - 1 delayed columns; the cells outside the
pattern hold the special token. Both MusicGen and MAGNeT use the cardinality as their special
token (MusicGen's pad/BOS, MAGNeT's mask), so the two models share it.
"""

from __future__ import annotations

import torch


def delayed_columns(frames: int, num_codebooks: int) -> int:
    """Columns of the delayed form of ``frames`` frames."""
    return frames + num_codebooks - 1


def delay(codes: torch.Tensor, special: int) -> torch.Tensor:
    """[B, K, T] codes -> [B, K, T + K - 1]: codebook k shifted k columns right, ``special`` around."""
    batch, num_codebooks, frames = codes.shape
    out = codes.new_full((batch, num_codebooks, delayed_columns(frames, num_codebooks)), special)
    for k in range(num_codebooks):
        out[:, k, k:k + frames] = codes[:, k]
    return out


def undelay(delayed: torch.Tensor, frames: int) -> torch.Tensor:
    """[B, K, >= T + K - 1] delayed values -> [B, K, T] in frame order (inverse of `delay`)."""
    num_codebooks = delayed.shape[1]
    return torch.stack([delayed[:, k, k:k + frames] for k in range(num_codebooks)], dim=1)


def pattern_mask(frames: int, num_codebooks: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool [K, T + K - 1]: True where a delayed column holds a real code (k <= c < T + k)."""
    columns = torch.arange(delayed_columns(frames, num_codebooks), device=device)[None]  # [1, C]
    shift = torch.arange(num_codebooks, device=device)[:, None]  # [K, 1]
    return (columns >= shift) & (columns < shift + frames)


def teacher_forcing_inputs(codes: torch.Tensor, special: int) -> torch.Tensor:
    """[B, K, T] codes -> [B, K, T + K - 1] inputs: a start column, then every delayed column but the last.

    The logits at input column c predict delayed column c (next-token prediction).
    """
    delayed = delay(codes, special)
    start = torch.full_like(delayed[..., :1], special)
    return torch.cat([start, delayed[..., :-1]], dim=-1)


def prefix_block(prefix: torch.Tensor, special: int) -> torch.Tensor:
    """[B, K, P] prefix -> [B, K, P + K]: a start column, then every delayed column (single-model hybrid).

    Unlike `teacher_forcing_inputs` the last delayed column is kept: the parallel part that
    follows the block must see the prefix's last frame in every codebook.
    """
    delayed = delay(prefix, special)
    start = torch.full_like(delayed[..., :1], special)
    return torch.cat([start, delayed], dim=-1)
