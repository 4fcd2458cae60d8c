"""Min-p sampling (Nguyen et al., 2024, "Turning Up the Heat: Min-p Sampling", arXiv 2407.01082).

At each decoding step the tokens kept are those whose probability is at least ``min_p`` times
the most probable token's: the cut adapts to how confident the model is, unlike top-p's fixed
mass or top-k's fixed count. The temperature is annealed over the stage as MAGNeT does (§3).
"""

from __future__ import annotations

import torch

from magnetkit_minp.config import MinPConfig

MIN_TEMPERATURE = 1e-2  # the last step of a stage would otherwise divide by 0 (as MAGNeT's samplers floor it)


class MinPSampler:
    """A `magnetkit.Sampler`: tempered softmax, min-p filter, one draw per position."""

    # Each position's draw depends only on its own logits: the engine may pass only the
    # positions it generates.
    positionwise = True

    def __init__(self, config: MinPConfig) -> None:
        self.config = config
        self.min_p = config.min_p
        self.span_scoring = config.span_scoring
        self.stage_temperatures = config.stage_temperatures

    def temperature_at(self, step: int, num_steps: int, stage: int = 0) -> float:
        """The stage's starting temperature, decayed linearly to 0 over its steps (floored)."""
        start = self.config.temperature
        if self.stage_temperatures is not None:
            start = self.stage_temperatures[min(stage, len(self.stage_temperatures) - 1)]
        if self.config.anneal:
            start *= (num_steps - 1 - step) / num_steps
        return max(start, MIN_TEMPERATURE)

    def __call__(self, logits: torch.Tensor, step: int, num_steps: int,
                 generator: torch.Generator | None = None, stage: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, T, card] logits -> (tokens [B, T] int64, their probabilities [B, T] at the step's temperature)."""
        probs = torch.softmax(logits.float() / self.temperature_at(step, num_steps, stage), dim=-1)
        keep = probs >= self.min_p * probs.amax(dim=-1, keepdim=True)  # the most probable token always stays
        kept = probs * keep
        flat = kept.reshape(-1, kept.shape[-1])
        tokens = torch.multinomial(flat, num_samples=1, generator=generator).reshape(logits.shape[:-1])
        confidences = torch.gather(probs, -1, tokens[..., None])[..., 0]
        return tokens, confidences

    def __repr__(self) -> str:
        return f"MinPSampler(min_p={self.min_p}, temperature={self.config.temperature})"
