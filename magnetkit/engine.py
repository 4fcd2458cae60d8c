"""MAGNeT's iterative parallel decoding (paper §3.3), as an explicit loop over pluggable parts.

For each codebook stage, for each step: the masking scheduler picks the least confident spans
to re-mask, the transformer predicts every position, classifier-free guidance mixes the
conditional and null predictions (annealed with the mask rate), the sampler chooses tokens and
their confidences, an optional rescorer re-weights those confidences (paper Eq. 5).
Arithmetic follows audiocraft's ``MagnetLMModel._generate_stage`` so greedy decoding matches it
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from magnetkit.errors import UsageError
from magnetkit.interfaces import MaskingScheduler, Rescorer, Sampler

KEEP_SCORE = -1e4  # score of a unit that must never be re-masked (fixed, or given)

ProgressCallback = Callable[[int, int], None]


@dataclass
class Guidance:
    """Classifier-free guidance: conditional rows, then the rows guided away from (null or negative)."""

    condition: torch.Tensor  # [B, L, D] (or [2B, L, D] with guidance)
    cfg_max: float = 10.0
    cfg_min: float = 1.0
    guided: bool = True  # False: ``condition`` is [B, L, D] and no guidance is applied
    texts: Sequence[str | None] = field(default_factory=list)  # for rescorers with their own text encoder

    def coefficient(self, mask_rate: torch.Tensor) -> float:
        """Annealed coefficient: cfg_max at mask rate 1, cfg_min at mask rate 0 (audiocraft's float maths)."""
        rate = float(mask_rate)
        return rate * self.cfg_max + (1 - rate) * self.cfg_min


@dataclass
class Known:
    """Frames whose codes are given (a prompt, or the context around an infilled range)."""

    codes: torch.Tensor  # [B, K, T]
    frames: torch.Tensor  # [B, T] bool: True where the codes are given

    @staticmethod
    def prefix(prompt: torch.Tensor, num_frames: int) -> "Known":
        """A prompt [B, K, P] at the start of ``num_frames`` frames."""
        B, K, P = prompt.shape
        codes = torch.zeros(B, K, num_frames, dtype=torch.long, device=prompt.device)
        codes[..., :P] = prompt
        frames = torch.zeros(B, num_frames, dtype=torch.bool, device=prompt.device)
        frames[:, :P] = True
        return Known(codes, frames)


# -------------------------------------------------------------------------- pure helpers
def guide(logits: torch.Tensor, batch: int, coefficient: float) -> torch.Tensor:
    """CFG mix of [2B, ...] logits: null + (cond - null) * coefficient."""
    cond, null = logits.split(batch, dim=0)
    return null + (cond - null) * coefficient


def initial_scores(known_frames: torch.Tensor | None, batch: int, num_frames: int, num_units: int,
                   device: torch.device) -> torch.Tensor:
    """[B, U] starting scores: 0, or KEEP_SCORE for units whose frames are all given."""
    scores = torch.zeros(batch, num_units, dtype=torch.float32, device=device)
    if known_frames is not None:
        kept = units_fully_known(known_frames, num_frames, num_units)
        scores = scores.masked_fill(kept, KEEP_SCORE)
    return scores


def units_fully_known(known_frames: torch.Tensor, num_frames: int, num_units: int) -> torch.Tensor:
    """[B, T] given frames -> [B, U] units all of whose frames are given."""
    span = num_frames // num_units
    return known_frames[:, : num_units * span].reshape(known_frames.shape[0], num_units, span).all(-1)


def units_generated(token_mask: torch.Tensor, still_masked: torch.Tensor, num_units: int) -> torch.Tensor:
    """[B, U] units generated at this step: chunks the mask picked, or tokens that were masked (audiocraft)."""
    B, T = token_mask.shape
    if num_units == T:
        return still_masked
    return token_mask.reshape(B, num_units, T // num_units).any(-1)


# -------------------------------------------------------------------------------- engine
@dataclass
class Decoder:
    """Decodes codes for one batch; built from the pipeline's components."""

    model: torch.nn.Module
    scheduler: MaskingScheduler
    sampler: Sampler
    rescorer: Rescorer | None = None
    callback: ProgressCallback | None = None

    @torch.no_grad()
    def generate(self, batch: int, num_frames: int, steps: Sequence[int], guidance: Guidance,
                 known: Known | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Generate [B, K, T'] codes, T' = the scheduler's usable length of ``num_frames``."""
        config = self.model.config
        device = guidance.condition.device
        if len(steps) != config.num_codebooks:
            raise UsageError(f"decoding_steps has {len(steps)} entries; the model has "
                             f"{config.num_codebooks} codebooks")
        T = self.scheduler.usable_frames(num_frames)
        codes = torch.full((batch, config.num_codebooks, T), config.mask_id, dtype=torch.long, device=device)
        if known is not None:
            known = Known(known.codes[..., :T].to(device), known.frames[:, :T].to(device))
            codes = torch.where(known.frames[:, None], known.codes, codes)
        cross_cache = self.model.cross_attention_cache(guidance.condition)
        done, total = 0, sum(steps)
        for stage, num_steps in enumerate(steps):
            scores = initial_scores(None if known is None else known.frames, batch, T,
                                    self.scheduler.num_units(T), device)
            to_generate = int((scores != KEEP_SCORE).sum(-1).max())
            if to_generate == 0:
                raise UsageError("nothing to generate: every frame is already given")
            for step in range(num_steps):
                scores = self._step(codes, stage, step, num_steps, scores, to_generate, guidance, known,
                                    cross_cache, generator)
                done += 1
                if self.callback is not None:
                    self.callback(done, total)
        return codes

    def _step(self, codes: torch.Tensor, stage: int, step: int, num_steps: int, scores: torch.Tensor,
              to_generate: int, guidance: Guidance, known: Known | None, cross_cache: list,
              generator: torch.Generator | None) -> torch.Tensor:
        """One decoding step of one stage, in place on ``codes`` [B, K, T]; returns the new unit scores."""
        T = codes.shape[-1]
        mask_id = self.model.config.mask_id

        # 1. mask: re-mask the least confident units at this step's rate
        mask_rate = self.scheduler.mask_rate(torch.linspace(0, 1, num_steps)[step])
        num_masked = self.scheduler.num_to_mask(step, num_steps, to_generate)
        token_mask = self.scheduler.decode_mask(scores, num_masked, T)  # [B, T]
        stage_tokens = codes[:, stage].masked_fill(token_mask, mask_id)
        if known is not None:
            stage_tokens = torch.where(known.frames, known.codes[:, stage], stage_tokens)
        codes[:, stage] = stage_tokens

        # 2. forward and guidance
        logits = self._guided_logits(codes, stage, guidance, mask_rate, cross_cache)  # [B, T, card]

        # 3. sample, fill the masked positions, score what was generated
        tokens, probs = self.sampler(logits, step, num_steps, generator=generator)  # [B, T], [B, T]
        still_masked = stage_tokens == mask_id
        codes[:, stage] = torch.where(still_masked, tokens, stage_tokens)
        if self.rescorer is not None and self.rescorer.weight < 1 and self.rescorer.applies(stage, step):
            rescored = self.rescorer.token_probs(codes, guidance.texts)[:, stage].to(probs)
            probs = self.rescorer.weight * probs + (1 - self.rescorer.weight) * rescored  # paper Eq. 5
        generated = units_generated(token_mask, still_masked, scores.shape[-1])
        return self.scheduler.unit_scores(probs, self.sampler.span_scoring).masked_fill(~generated, KEEP_SCORE)

    def _guided_logits(self, codes: torch.Tensor, stage: int, guidance: Guidance, mask_rate: torch.Tensor,
                       cross_cache: list) -> torch.Tensor:
        """Logits of the current stage [B, T, card], guided when guidance is on."""
        if not guidance.guided:
            return self.model(codes, guidance.condition, stage, stage_only=True, cross_cache=cross_cache)[:, 0]
        B = codes.shape[0]
        logits = self.model(torch.cat([codes, codes]), guidance.condition, stage, stage_only=True,
                            cross_cache=cross_cache)[:, 0]
        return guide(logits, B, guidance.coefficient(mask_rate))
