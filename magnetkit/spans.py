"""Span masking maths shared by every scheduler: span construction, decoding masks, the App. C table.

Everything here is a pure function of its arguments; `magnetkit.SpanScheduler` builds on them and
the schedulers only choose the curve gamma(t).
Semantics follow audiocraft's MAGNeT (``lm_magnet.py`` and ``solvers/magnet.py``) exactly,
including how ties and rounding resolve, so generations reproduce the reference bit for bit.
"""

from __future__ import annotations

import bisect
import functools
from fractions import Fraction
from math import comb

import torch


def extend_spans(starts: torch.Tensor, span_len: int) -> torch.Tensor:
    """Bool ``[..., T]`` span starts -> bool ``[..., T]`` with each start covering ``span_len`` frames.

    Args:
        starts: True where a span begins.
        span_len: frames per span; a span that would run past the end is cut there.

    Returns:
        The union of the spans.
    """
    mask = starts.clone()
    for offset in range(1, min(span_len, starts.shape[-1])):
        # A frame is masked when some span starts ``offset`` frames before it.
        mask[..., offset:] |= starts[..., :-offset]
    return mask


def top_units_mask(unit_scores: torch.Tensor, num_masked: int) -> torch.Tensor:
    """Bool ``[B, U]``: True at the ``num_masked`` highest scores of each row.

    ``topk`` (not a sort) picks them, as audiocraft does, so ties among equal scores (every
    score is 0 at a stage's first step) resolve to the very same units.
    """
    chosen = unit_scores.topk(num_masked, dim=-1).indices
    mask = torch.zeros(unit_scores.shape, dtype=torch.bool, device=unit_scores.device)
    return mask.scatter(-1, chosen, True)


def _spans_at(order: torch.Tensor, count: int, num_frames: int, span_len: int) -> torch.Tensor:
    """Bool ``[T]`` covering the spans that start at ``order[:count]``."""
    starts = torch.zeros(num_frames, dtype=torch.bool, device=order.device)
    starts[order[:count]] = True
    return extend_spans(starts, span_len)


def least_probable_spans(token_scores: torch.Tensor, num_masked: int, span_len: int) -> torch.Tensor:
    """Bool ``[T]`` mask of the least probable overlapping (stride-1) spans, about ``num_masked`` frames.

    A span's score is the sum of its tokens' ``-log p`` (its probability is the product, §3.2).
    The spans are ranked from least to most probable, and the number ``u`` of spans to take is
    found by audiocraft's binary search so that their union is as close as it gets to
    ``num_masked`` frames. The bracket, the rounding (Python's half-to-even ``round``), the early
    return and the mask returned when the search stops are audiocraft's, so masks match exactly.

    Args:
        token_scores: ``[T]`` per-token ``-log p`` (higher = less probable = mask first).
        num_masked: the target number of masked frames (raised to at least ``span_len``).
        span_len: frames per span.

    Returns:
        The boolean mask.
    """
    num_frames = token_scores.shape[-1]
    span_scores = token_scores.unfold(-1, span_len, 1).sum(dim=-1)  # [T - span_len + 1]
    order = torch.argsort(span_scores, descending=True)
    target = max(num_masked, span_len)

    # u spans cover between u * span_len frames (no overlap) and u + span_len - 1 (all overlap),
    # so the u reaching the target lies between these two bounds.
    low = target // span_len
    high = target - span_len + 1
    mid = round(0.5 * (low + high))
    if mid in (low, high):
        return _spans_at(order, mid, num_frames, span_len)
    while low < mid < high:
        mask = _spans_at(order, mid, num_frames, span_len)
        if int(mask.sum()) > target:
            high = mid
        else:
            low = mid
        mid = round(0.5 * (low + high))
    # audiocraft returns the last mask it built, not one for the final ``mid``.
    return mask


# ------------------------------------------------------------------------- the App. C table
def expected_mask_rate(num_spans: int, num_frames: int, span_len: int) -> float:
    """Mean mask rate after placing ``num_spans`` distinct random span starts (paper App. C).

    A frame stays unmasked when none of the ``span_len`` starts that would cover it is drawn:
    ``1 - C(T - l, u) / C(T, u)`` for ``u`` starts among ``T`` positions. Computed exactly with
    integers; the table below uses audiocraft's overflow-safe float product of the same ratio.
    """
    if num_spans > num_frames:
        raise ValueError(f"cannot place {num_spans} distinct span starts in {num_frames} frames")
    return float(1 - Fraction(comb(num_frames - span_len, num_spans), comb(num_frames, num_spans)))


@functools.lru_cache(maxsize=64)
def num_spans_table(num_frames: int, span_len: int) -> tuple[int, ...]:
    """The App. C look-up table: mask rate in percent (0..100) -> number of random span starts.

    Entry ``m`` is the fewest starts ``u`` whose expected mask rate (`expected_mask_rate`) reaches
    ``m / 100``. The ratio ``C(T-l, u) / C(T, u) = prod_{j<u} (T-l-j) / (T-j)`` is accumulated in
    float64 exactly as audiocraft's ``_calc_mean_maskrate_to_u_LUT`` does, so entries match it at
    rates that fall on a boundary too.

    Args:
        num_frames: the sequence length T (at least ``span_len``).
        span_len: frames per span.

    Returns:
        101 numbers of span starts.
    """
    if span_len < 1 or num_frames < span_len:
        raise ValueError(f"need num_frames >= span_len >= 1, got num_frames={num_frames}, span_len={span_len}")
    rate_of = [0.0]  # rate_of[u]: expected mask rate with u starts; 0 starts mask nothing
    unmasked = (num_frames - span_len) / float(num_frames)
    for u in range(1, num_frames):
        rate_of.append(1 - unmasked)
        unmasked *= (num_frames - span_len - u) / (num_frames - u)
    return tuple(bisect.bisect_left(rate_of, percent / float(100)) for percent in range(101))
