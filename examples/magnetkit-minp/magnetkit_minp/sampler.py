"""Min-p sampling (Nguyen et al., 2024, "Turning Up the Heat: Min-p Sampling", arXiv 2407.01082).

At each decoding step the tokens kept are those whose probability is at least ``min_p`` times
the most probable token's: the cut adapts to how confident the model is, unlike top-p's fixed
mass or top-k's fixed count. `magnetkit.TemperatureSampler` does the rest of the `Sampler`
contract: the temperature annealed over the stage as MAGNeT does (§3), per-stage temperatures,
the confidences, and working through many positions in cache-sized chunks on a CPU.
"""

from __future__ import annotations

import torch

from magnetkit import TemperatureSampler
from magnetkit_minp.config import MinPConfig


class MinPSampler(TemperatureSampler):
    """A `magnetkit.Sampler`: tempered softmax, min-p filter, one draw per position."""

    def __init__(self, config: MinPConfig) -> None:
        super().__init__(config)
        self.min_p = config.min_p

    def choose(self, logits: torch.Tensor, probs: torch.Tensor,
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tokens [B, T] drawn from the kept share of ``probs`` [B, T, card]; confidences read from ``probs``."""
        keep = probs >= self.min_p * probs.amax(dim=-1, keepdim=True)  # the most probable token always stays
        flat = (probs * keep).reshape(-1, probs.shape[-1])
        tokens = torch.multinomial(flat, num_samples=1, generator=generator).reshape(probs.shape[:-1])
        return tokens, probs
