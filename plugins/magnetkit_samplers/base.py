"""What every built-in sampler shares: temperature, its annealing, and the confidences it returns."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field

# audiocraft's floor on the annealed temperature: the last step of a stage would otherwise divide by 0.
MIN_TEMPERATURE = 1e-2


class SamplerConfig(BaseModel):
    """Parameters common to every built-in sampler."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    temperature: float = Field(3.0, gt=0, description="softmax temperature at a stage's first step")
    anneal: bool = Field(True, description="decay the temperature linearly to 0 over each stage's steps")
    span_scoring: Literal["max", "prod"] = Field(
        "max", description="span confidence: 'max' = most probable token, 'prod' = product of probabilities")


def annealed_temperature(temperature: float, step: int, num_steps: int, anneal: bool) -> float:
    """The temperature at ``step`` of ``num_steps``: ``temperature * steps_left / num_steps`` when annealing.

    ``steps_left = num_steps - 1 - step``, so the last step runs at 0 (floored by the caller).
    """
    if not anneal:
        return temperature
    steps_left = num_steps - 1 - step
    return temperature * (steps_left / num_steps)


class TemperatureSampler(ABC):
    """A `magnetkit.Sampler`: softmax at the (annealed) temperature, then a subclass picks tokens."""

    def __init__(self, config: SamplerConfig) -> None:
        self.config = config
        self.temperature = config.temperature
        self.anneal = config.anneal
        self.span_scoring = config.span_scoring

    def temperature_at(self, step: int, num_steps: int) -> float:
        """The softmax temperature used at ``step`` of ``num_steps`` (after the 1e-2 floor)."""
        return max(annealed_temperature(self.temperature, step, num_steps, self.anneal), MIN_TEMPERATURE)

    def __call__(self, logits: torch.Tensor, step: int, num_steps: int,
                 generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Choose a token at every position.

        Args:
            logits: [B, T, card] guided logits.
            step: the decoding step within the stage, from 0.
            num_steps: the stage's number of decoding steps.
            generator: the source of randomness (on the logits' device); None uses torch's global one.

        Returns:
            (tokens [B, T] int64, their probabilities [B, T]): the confidences that decide which
            spans are re-masked next.

        Raises:
            ValueError: for logits that are not [B, T, card] or a step outside [0, num_steps).
        """
        if logits.dim() != 3:
            raise ValueError(f"logits must be [B, T, card], got shape {tuple(logits.shape)}")
        if not 0 <= step < num_steps:
            raise ValueError(f"step must be in [0, {num_steps}), got {step}")
        probs = torch.softmax(logits / self.temperature_at(step, num_steps), dim=-1)  # [B, T, card]
        tokens, distribution = self._choose(logits, probs, generator)
        confidences = torch.gather(distribution, -1, tokens[..., None])[..., 0]
        return tokens, confidences

    @abstractmethod
    def _choose(self, logits: torch.Tensor, probs: torch.Tensor,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens [B, T], the [B, T, card] distribution their confidences are read from)."""

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({params})"


def draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``probs`` [..., card] -> [..., 1] with a single ``torch.multinomial`` call.

    The rows are flattened to [N, card] first, so the random stream is consumed exactly as
    audiocraft's ``utils.multinomial`` consumes it.
    """
    flat = probs.reshape(-1, probs.shape[-1])
    picked = torch.multinomial(flat, num_samples=1, generator=generator)
    return picked.reshape(*probs.shape[:-1], 1)
