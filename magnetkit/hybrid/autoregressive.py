"""Autoregressive prefix decoding in the delay pattern, shared by the two hybrid modes (paper §3.4).

A model decodes one delayed column per step from a cache (`AutoregressiveSession.step`); this
module owns everything else: the pattern, classifier-free guidance and the sampling, so MusicGen
(two-model hybrid) and the single-model Hybrid-MAGNeT decode their prefixes the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import torch

from magnetkit.engine import guide
from magnetkit.errors import RecipeError
from magnetkit.hybrid.config import HybridConfig
from magnetkit.hybrid.pattern import delayed_columns, pattern_mask, undelay


@runtime_checkable
class AutoregressiveSession(Protocol):
    """One decoding run of an autoregressive model over R condition rows, holding its cache."""

    def step(self, column: torch.Tensor) -> torch.Tensor:
        """[R, K] codes of the next delayed input column -> [R, K, card] logits of the column after it."""
        ...


@runtime_checkable
class AutoregressiveModel(Protocol):
    """A model over the same token space as MAGNeT that decodes a prefix token by token (KV cache)."""

    num_codebooks: int
    cardinality: int
    frame_rate: float
    sample_rate: int

    def start(self, texts: Sequence[str | None]) -> AutoregressiveSession:
        """A session over one condition row per text (None = the null condition)."""
        ...


# -------------------------------------------------------------------------------- sampling
def sample_top_k(logits: torch.Tensor, top_k: int, temperature: float,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """[..., card] logits -> [...] tokens: sampled among the ``top_k`` most probable (0 = all, 1 = greedy)."""
    if top_k == 1:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if 0 < top_k < probs.shape[-1]:
        kth = probs.topk(top_k, dim=-1).values[..., -1:]
        probs = probs * (probs >= kth)
    flat = probs.reshape(-1, probs.shape[-1])
    return torch.multinomial(flat, 1, generator=generator).reshape(probs.shape[:-1])


# -------------------------------------------------------------------------------- decoding
@torch.no_grad()
def decode_prefix(session: AutoregressiveSession, batch: int, frames: int, num_codebooks: int, special: int,
                  config: HybridConfig, guided: bool, generator: torch.Generator | None = None,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """Decode ``frames`` frames autoregressively in the delay pattern: [B, K, frames] codes.

    Args:
        session: rows 0..B-1 conditional, then (when ``guided``) rows B..2B-1 to guide away from.
        batch: B.
        frames: prefix length in frames.
        num_codebooks: K.
        special: the start/padding token (the cardinality for MusicGen and MAGNeT).
        config: sampling (``top_k``, ``temperature``) and guidance (``cfg_coef``).
        guided: mix conditional and null logits, null + (cond - null) * cfg_coef.
        generator: the sampling generator.
        device: where the codes live.
    Returns:
        Int64 codes in [0, special).
    """
    valid = pattern_mask(frames, num_codebooks, device)  # [K, C]
    columns = delayed_columns(frames, num_codebooks)
    rows = 2 * batch if guided else batch
    delayed = torch.full((batch, num_codebooks, columns), special, dtype=torch.long, device=device)
    column = torch.full((rows, num_codebooks), special, dtype=torch.long, device=device)  # the start column
    for c in range(columns):
        logits = session.step(column)  # [R, K, card]
        if guided:
            logits = guide(logits, batch, config.cfg_coef)  # [B, K, card]
        tokens = sample_top_k(logits, config.top_k, config.temperature, generator)  # [B, K]
        # Cells outside the pattern (before a codebook starts, after it ends) stay special.
        tokens = torch.where(valid[:, c], tokens, torch.full_like(tokens, special))
        delayed[:, :, c] = tokens
        column = tokens.repeat(rows // batch, 1)
    return undelay(delayed, frames)


# ---------------------------------------------------------------------------- compatibility
def token_space_problems(model: Any, codec: Any, num_codebooks: int, cardinality: int, where: str) -> list[str]:
    """Why ``model``'s tokens are not the codec's and the MAGNeT transformer's (empty = they are)."""
    problems = []
    name = type(model).__name__
    if int(model.num_codebooks) != num_codebooks:
        problems.append(f"{where}: {name} has {model.num_codebooks} codebooks, the MAGNeT model {num_codebooks}")
    if int(model.cardinality) != cardinality:
        problems.append(f"{where}: {name} has {model.cardinality} codes per codebook, the MAGNeT model {cardinality}")
    if abs(float(model.frame_rate) - float(codec.frame_rate)) > 1e-3 * float(codec.frame_rate):
        problems.append(f"{where}: {name} runs at {float(model.frame_rate):g} frames/s, the codec at "
                        f"{float(codec.frame_rate):g}")
    if int(model.sample_rate) != int(codec.sample_rate):
        problems.append(f"{where}: {name}'s codec is {int(model.sample_rate)} Hz, the MAGNeT codec "
                        f"{int(codec.sample_rate)} Hz")
    return problems


def check_token_space(model: Any, codec: Any, num_codebooks: int, cardinality: int, where: str) -> None:
    """Refuse two models that do not share a token space (codec, codebooks, cardinality, frame rate).

    Raises:
        RecipeError: listing every mismatch, in recipe terms.
    """
    problems = token_space_problems(model, codec, num_codebooks, cardinality, where)
    if problems:
        raise RecipeError(problems)
