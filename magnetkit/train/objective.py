"""MAGNeT's training objective (paper §3.1, audiocraft's ``MagnetSolver.run_step``).

For one codebook stage per step: keep the earlier stages as they are, mask the stage's tokens on
random spans (the scheduler's mask rate gamma(t), t ~ U(0, 1), placed by the App. C rate-to-spans
table), mask every later stage fully, and take the cross-entropy on the masked positions of that
stage only. Condition dropout (classifier-free guidance, 0.3 in the paper) is applied to the
captions when rows are drawn (`magnetkit.train.data.make_row`), row by row: audiocraft drops the
conditions of a whole batch at once, with the same expected rate and a noisier gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from magnetkit.train.data import STEP, generator


def draw_stage(seed: int, step: int, num_codebooks: int) -> int:
    """The codebook stage trained at ``step``, uniform over stages (as audiocraft draws it)."""
    return int(torch.randint(num_codebooks, (1,), generator=generator(seed, STEP, step)))


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
