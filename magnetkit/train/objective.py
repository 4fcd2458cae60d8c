"""MAGNeT's training objective (paper §3.1, audiocraft's ``MagnetSolver.run_step``).

For one codebook stage per step: keep the earlier stages as they are, mask the stage's tokens on
random spans (the scheduler's mask rate gamma(t), t ~ U(0, 1), placed by the App. C rate-to-spans
table), mask every later stage fully, and take the cross-entropy on the masked positions of that
stage only. Condition dropout (classifier-free guidance, 0.3 in the paper) is applied to the
captions when rows are drawn (`magnetkit.train.data.make_row`), row by row: audiocraft drops the
conditions of a whole batch at once, with the same expected rate and a noisier gradient.

The training loop calls an `Objective`: `MaskedObjective` here, or Hybrid-MAGNeT's
`magnetkit.hybrid.objective.HybridObjective` (§3.4) when the recipe has a ``hybrid`` section.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

import torch
import torch.nn.functional as F

from magnetkit.errors import UsageError
from magnetkit.train.data import STEP, generator

Autocast = Callable[[], AbstractContextManager]


@dataclass(frozen=True)
class StepDraw:
    """What one training step trains, drawn from the seed and the step: the same on every process."""

    stage: int  # the codebook stage of the masked objective
    prefix_frames: int = 0  # Hybrid-MAGNeT's autoregressive prefix (§3.4); 0 = plain MAGNeT


class Objective(Protocol):
    """A training objective, as the loop calls it at every step (and, with ``StepDraw(stage)``, in validation).

    The loss of a step is ``sum of loss_sum over the global batch / sum of scored_tokens``, so a
    step does not depend on how the batch is split across processes and micro-batches.
    """

    def draw(self, seed: int, step: int, num_frames: int) -> StepDraw:
        """What ``step`` trains (its random choices come from ``seed`` and ``step`` only)."""
        ...

    def scored_tokens(self, batch: Any, draw: StepDraw) -> torch.Tensor:
        """The loss's normaliser for one batch (``codes``, ``spans``, ``valid``, ``texts``): a float count."""
        ...

    def loss_sum(self, lm: Callable[..., torch.Tensor], batch: Any, draw: StepDraw, condition_length: int,
                 device: torch.device, autocast: Autocast) -> torch.Tensor:
        """The summed (float32) loss of one batch; ``lm`` is `magnetkit.train.build.MagnetLM` (or its wrapper)."""
        ...


class MaskedObjective:
    """MAGNeT's masked objective (§3.1): one random stage, its spans masked, later stages fully masked."""

    def __init__(self, num_codebooks: int, mask_id: int, stage_weights: Sequence[float] | None = None) -> None:
        self.num_codebooks, self.mask_id = num_codebooks, mask_id
        self.stage_weights = check_stage_weights(stage_weights, num_codebooks)

    def draw(self, seed: int, step: int, num_frames: int) -> StepDraw:
        """A stage drawn by `draw_stage` (uniform unless the recipe weighs them)."""
        return StepDraw(draw_stage(seed, step, self.num_codebooks, self.stage_weights))

    def scored_tokens(self, batch: Any, draw: StepDraw) -> torch.Tensor:
        """The masked valid tokens of the batch."""
        return (batch.spans & batch.valid).sum().float()

    def loss_sum(self, lm: Callable[..., torch.Tensor], batch: Any, draw: StepDraw, condition_length: int,
                 device: torch.device, autocast: Autocast) -> torch.Tensor:
        """Summed cross-entropy of the stage on the masked tokens (`masked_loss_sum`)."""
        return masked_loss_sum(lm, batch, draw.stage, self.mask_id, condition_length, device, autocast)


def masked_loss_sum(lm: Callable[..., torch.Tensor], batch: Any, stage: int, mask_id: int, condition_length: int,
                    device: torch.device, autocast: Autocast) -> torch.Tensor:
    """Summed cross-entropy of ``stage`` on the masked tokens of ``batch`` (the model under ``autocast``)."""
    codes = batch.codes.to(device)
    inputs, loss_mask = mask_inputs(codes, batch.spans.to(device), batch.valid.to(device), stage, mask_id)
    with autocast():
        logits = lm(inputs, batch.texts, stage, condition_length)  # [B, 1, T, card]
    return cross_entropy_sum(logits, codes[:, stage], loss_mask)


def check_stage_weights(weights: Sequence[float] | None, num_codebooks: int) -> list[float] | None:
    """``train.stage_weights`` checked against the model: one weight per codebook (None stays None)."""
    if weights is None:
        return None
    if len(weights) != num_codebooks:
        raise UsageError(f"train.stage_weights has {len(weights)} weights, the model has {num_codebooks} codebooks: "
                         f"give one per codebook")
    return [float(w) for w in weights]


def draw_stage(seed: int, step: int, num_codebooks: int, weights: Sequence[float] | None = None) -> int:
    """The codebook stage trained at ``step``: uniform over stages (as audiocraft draws it), or by ``weights``."""
    rng = generator(seed, STEP, step)
    if weights is None:
        return int(torch.randint(num_codebooks, (1,), generator=rng))
    return int(torch.multinomial(torch.tensor(weights, dtype=torch.float64), 1, generator=rng))


def mask_inputs(codes: torch.Tensor, spans: torch.Tensor, valid: torch.Tensor, stage: int,
                mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's input and where the loss is taken.

    Args:
        codes: target codes [B, K, T].
        spans: the stage's span mask [B, T] (True = masked).
        valid: [B, T], False on padding (masked in every stage, never scored).
        stage: the codebook being trained.
        mask_id: the mask token (the codec's cardinality).
    Returns:
        (inputs [B, K, T], loss mask [B, T]).
    """
    hidden = torch.zeros_like(codes, dtype=torch.bool)  # [B, K, T]
    hidden[:, stage] = spans
    hidden[:, stage + 1:] = True  # later stages are unknown while this one is decoded (§3.1)
    hidden |= ~valid[:, None, :]
    return codes.masked_fill(hidden, mask_id), spans & valid


def cross_entropy_sum(logits: torch.Tensor, targets: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Summed cross-entropy (float32) of the stage's logits [B, 1, T, card] at the masked positions.

    A sum, not a mean: the loop divides by the number of masked tokens in the whole global batch,
    so the gradient does not depend on how the batch is split across processes.
    """
    scored = logits[:, 0][loss_mask]  # [N, card]
    return F.cross_entropy(scored.float(), targets[loss_mask], reduction="sum")
