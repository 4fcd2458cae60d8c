"""The reusable sampler base: temperature, its annealing, the confidences; subclasses pick tokens.

`TemperatureSampler` implements the whole `magnetkit.interfaces.Sampler` contract around one
abstract method, `TemperatureSampler.choose`. The built-in top-p, top-k and greedy samplers
(plugin ``magnetkit_samplers``) subclass it, exactly as a third-party sampler can::

    from magnetkit import SamplerConfig, TemperatureSampler

    class Argmin(TemperatureSampler):
        def choose(self, logits, probs, generator):
            return logits.min(dim=-1).indices, probs
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from magnetkit.component_config import SamplerConfig

from magnetkit.errors import UsageError

# audiocraft's floor on the annealed temperature: the last step of a stage would otherwise divide by 0.
MIN_TEMPERATURE = 1e-2
# CPU work over [N, card] logits goes this many entries at a time (2 MiB of float32, about a core's
# cache): positionwise samplers here, and the engine's masked-only guidance (`DecodeOptions.masked_only`).
CHUNK_ENTRIES = 2**19


def annealed_temperature(temperature: float, step: int, num_steps: int, anneal: bool) -> float:
    """The temperature at ``step`` of ``num_steps``: ``temperature * steps_left / num_steps`` when annealing.

    ``steps_left = num_steps - 1 - step``, so the last step runs at 0 (floored by the caller).
    """
    if not anneal:
        return temperature
    steps_left = num_steps - 1 - step
    return temperature * (steps_left / num_steps)


class TemperatureSampler(ABC):
    """A `magnetkit.Sampler`: softmax at the (annealed) temperature, then a subclass picks tokens.

    ``positionwise``: each position's token depends only on its own logits (and the random
    stream), so the engine may pass just the positions it generates as [1, N, card]. False when
    the tokens must be audiocraft's draws, whose random stream depends on the whole [B, T] layout.
    """

    audiocraft_stream = False  # samplers that draw at random set it from their `DrawingConfig`

    def __init__(self, config: SamplerConfig) -> None:
        self.config = config
        self.temperature = config.temperature
        self.anneal = config.anneal
        self.span_scoring = config.span_scoring
        self.stage_temperatures = config.stage_temperatures

    @property
    def positionwise(self) -> bool:
        """Whether the engine may pass only the positions it generates (see the class docstring)."""
        return not self.audiocraft_stream

    def check_stages(self, num_stages: int) -> None:
        """Refuse a ``stage_temperatures`` list whose length is not the model's number of stages.

        Raises:
            UsageError: naming both numbers.
        """
        if self.stage_temperatures is not None and len(self.stage_temperatures) != num_stages:
            raise UsageError(f"sampler.stage_temperatures has {len(self.stage_temperatures)} entries; the model has "
                             f"{num_stages} codebooks")

    def temperature_at(self, step: int, num_steps: int, stage: int | None = None) -> float:
        """The softmax temperature used at ``step`` of ``num_steps`` of ``stage`` (after the 1e-2 floor)."""
        start = self.temperature
        if self.stage_temperatures is not None and stage is not None:
            if not 0 <= stage < len(self.stage_temperatures):
                raise ValueError(f"stage {stage} has no entry in stage_temperatures ({len(self.stage_temperatures)})")
            start = self.stage_temperatures[stage]
        return max(annealed_temperature(start, step, num_steps, self.anneal), MIN_TEMPERATURE)

    def __call__(self, logits: torch.Tensor, step: int, num_steps: int,
                 generator: torch.Generator | None = None, stage: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Choose a token at every position.

        Args:
            logits: [B, T, card] guided logits.
            step: the decoding step within the stage, from 0.
            num_steps: the stage's number of decoding steps.
            generator: the source of randomness (on the logits' device); None uses torch's global one.
            stage: the codebook stage being decoded (selects ``stage_temperatures``); None: ``temperature``.

        Returns:
            (tokens [B, T] int64, their probabilities [B, T]): the confidences that decide which
            spans are re-masked next.

        Raises:
            ValueError: for logits that are not [B, T, card], a step outside [0, num_steps) or a
                stage without an entry in ``stage_temperatures``.
        """
        if logits.dim() != 3:
            raise ValueError(f"logits must be [B, T, card], got shape {tuple(logits.shape)}")
        if not 0 <= step < num_steps:
            raise ValueError(f"step must be in [0, {num_steps}), got {step}")
        temperature = self.temperature_at(step, num_steps, stage)
        rows = max(1, CHUNK_ENTRIES // logits.shape[-1])
        if not self.positionwise or logits.shape[0] * logits.shape[1] <= rows or logits.device.type != "cpu":
            return self._sample(logits, temperature, generator)
        # Many positions on a CPU: a chunk of rows at a time, so each chunk's softmax, sort and draw
        # stay in cache (measured ~2x faster than one pass per operation over 8000 rows x 2048).
        flat = logits.reshape(1, -1, logits.shape[-1])
        chunks = [self._sample(chunk, temperature, generator) for chunk in flat.split(rows, dim=1)]
        tokens = torch.cat([chunk[0] for chunk in chunks], dim=1).reshape(logits.shape[:-1])
        return tokens, torch.cat([chunk[1] for chunk in chunks], dim=1).reshape(logits.shape[:-1])

    def _sample(self, logits: torch.Tensor, temperature: float,
                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Tempered softmax, `choose`, then each chosen token's probability."""
        probs = torch.softmax(logits / temperature, dim=-1)  # [B, T, card]
        tokens, distribution = self.choose(logits, probs, generator)
        confidences = torch.gather(distribution, -1, tokens[..., None])[..., 0]
        return tokens, confidences

    @abstractmethod
    def choose(self, logits: torch.Tensor, probs: torch.Tensor,
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pick the tokens: the one method a subclass implements.

        Args:
            logits: [N, T, card] the guided logits (untempered; never modify them).
            probs: [N, T, card] their softmax at this step's temperature.
            generator: the only source of randomness.

        Returns:
            (tokens [N, T] int64, the [N, T, card] distribution their confidences are read from,
            usually ``probs``).
        """

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.config.model_dump().items())
        return f"{type(self).__name__}({params})"
