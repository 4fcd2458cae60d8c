"""Training rows from the token cache: a deterministic stream of random crops.

Row ``p`` of a run's stream (``p`` counts rows from the start of training, over every process)
is a function of ``(seed, p)`` alone: which file (an epoch-wise permutation of the files), where
its crop starts, whether its condition is dropped, and its span mask. So a global batch is the
same whatever number of processes or micro-batches it is split into, and a resumed run sees
exactly the rows the interrupted one would have seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from magnetkit.errors import UsageError
from magnetkit.interfaces import MaskingScheduler
from magnetkit.train.cache import TokenSet

# What a generator is for: keeps the streams of random numbers apart.
ORDER, ROW, STEP, VALID, PROCESS = range(5)


def generator(seed: int, purpose: int, *index: int) -> torch.Generator:
    """A CPU generator for ``(seed, purpose, *index)``; SeedSequence mixes the parts well."""
    state = np.random.SeedSequence([seed, purpose, *index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed((int(state[0]) & 0x7FFFFFFF) << 32 | int(state[1]))


@dataclass
class Batch:
    """Rows of codes with what the objective needs to mask them."""

    codes: torch.Tensor  # [B, K, T] int64, padding filled with 0
    valid: torch.Tensor  # [B, T] bool: False on padding after a short file
    spans: torch.Tensor  # [B, T] bool: the scheduler's span mask for the stage being trained
    texts: list[str | None]  # captions, None where the condition is dropped (or absent)

    def __len__(self) -> int:
        return self.codes.shape[0]


def make_row(tokens: TokenSet, index: int, frames: int, scheduler: MaskingScheduler,
             rng: torch.Generator, cfg_dropout: float, continuation: float = 0.0) -> Batch:
    """One row: a random ``frames``-frame crop of file ``index``, padded, with its spans and caption.

    With probability ``continuation`` the mask also covers every frame from a random one on
    (``train.continuation_masking``); at 0 no extra random numbers are drawn, so the stream of
    earlier runs is unchanged.
    """
    total = tokens.entries[index].frames
    start = int(torch.randint(total - frames + 1, (1,), generator=rng)) if total > frames else 0
    codes = tokens.crop(index, start, frames)  # [K, <= T]
    length = codes.shape[-1]
    # Drawn for every row, so the stream of random numbers does not depend on the caption.
    drop = bool(torch.rand((), generator=rng) < cfg_dropout)
    spans = scheduler.training_mask(1, frames, generator=rng)[0].bool()  # [T]
    if continuation > 0 and bool(torch.rand((), generator=rng) < continuation):
        spans[int(torch.randint(1, frames, (1,), generator=rng)):] = True  # frame 0 at least stays as drawn
    valid = torch.arange(frames) < length
    text = None if drop else tokens.entries[index].caption
    return Batch(F.pad(codes, (0, frames - length))[None], valid[None], spans[None], [text])


def collate(rows: Sequence[Batch]) -> Batch:
    """Stack rows into one batch."""
    return Batch(torch.cat([r.codes for r in rows]), torch.cat([r.valid for r in rows]),
                 torch.cat([r.spans for r in rows]), [t for r in rows for t in r.texts])


class TrainingStream:
    """The run's rows: epochs of shuffled files, each row a random crop (see the module doc)."""

    def __init__(self, tokens: TokenSet, frames: int, min_frames: int, scheduler: MaskingScheduler,
                 seed: int, cfg_dropout: float, continuation: float = 0.0):
        self.tokens = tokens
        self.frames = frames
        self.scheduler = scheduler
        self.seed = seed
        self.cfg_dropout = cfg_dropout
        self.continuation = continuation
        self.usable = [i for i, entry in enumerate(tokens.entries) if entry.frames >= min_frames]
        self.too_short = len(tokens) - len(self.usable)
        if not len(tokens):
            raise UsageError(f"no training file could be encoded: {describe(tokens)}")
        if not self.usable:
            raise UsageError(f"no training file is long enough: all {len(tokens)} encoded files are shorter "
                             f"than {min_frames} frames (lower data.min_segment_ratio or model.segment_duration)")
        self._orders: dict[int, torch.Tensor] = {}

    def file_at(self, position: int) -> int:
        """The file of stream row ``position``: epoch ``position // N`` is a permutation of the N files."""
        epoch, offset = divmod(position, len(self.usable))
        order = self._orders.get(epoch)
        if order is None:
            self._orders = {epoch: torch.randperm(len(self.usable), generator=generator(self.seed, ORDER, epoch))}
            order = self._orders[epoch]
        return self.usable[int(order[offset])]

    def rows(self, positions: Sequence[int]) -> Batch:
        """The batch of stream rows ``positions``."""
        return collate([make_row(self.tokens, self.file_at(p), self.frames, self.scheduler,
                                 generator(self.seed, ROW, p), self.cfg_dropout, self.continuation)
                        for p in positions])


def valid_batches(tokens: TokenSet, indices: Sequence[int], count: int, frames: int, scheduler: MaskingScheduler,
                  seed: int, stage: int, batch_size: int) -> list[Batch]:
    """Fixed validation batches for one stage: the same crops and masks at every validation.

    An index from ``count`` on (padding, so that every process runs as many batches) gives a row
    without valid frames, which takes no loss.
    """
    rows = []
    for index in indices:
        row = make_row(tokens, min(index, count - 1), frames, scheduler, generator(seed, VALID, index, stage), 0.0)
        if index >= count:
            row.valid[:] = False
        rows.append(row)
    return [collate(rows[start:start + batch_size]) for start in range(0, len(rows), batch_size)]


def describe(tokens: TokenSet, stream: Any | None = None) -> str:
    """One line about a split: files encoded, skipped (with the first reasons), too short."""
    parts = [f"{len(tokens)} files encoded"]
    if stream is not None and stream.too_short:
        parts.append(f"{stream.too_short} too short for a crop (left out)")
    if tokens.skipped:
        reasons = "; ".join(s["reason"] for s in tokens.skipped[:3])
        more = f" and {len(tokens.skipped) - 3} more" if len(tokens.skipped) > 3 else ""
        parts.append(f"{len(tokens.skipped)} skipped ({reasons}{more})")
    return ", ".join(parts)
