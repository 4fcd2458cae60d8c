"""The masking-scheduler contract suite: the curve, decoding counts and masks, training masks, config.

A plugin author runs every check on an implementation with
``check_scheduler(MyScheduler, MyConfig())``; each check is also importable on its own
(`SCHEDULER_CHECKS`) so a test can parametrize over them and point at the one that fails.
Checks raise ``AssertionError`` with a sentence saying what is expected.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from pydantic import BaseModel

from magnetkit.testing.checks import check_config_serialises, expect, fail
from magnetkit.engine import KEEP_SCORE
from magnetkit.interfaces import MaskingScheduler

__all__ = ["SCHEDULER_CHECKS", "check_scheduler"]

SchedulerFactory = Callable[[Any], MaskingScheduler]

# The score the decoding engine gives a prompt's units so they are never re-masked.
PROMPT_SCORE = KEEP_SCORE




def _units_are_frames_with_spans(scheduler: MaskingScheduler, num_frames: int) -> bool:
    """Whether units are single frames but masks are spans of several (stride-1 arrangement)."""
    return scheduler.num_units(num_frames) == num_frames and scheduler.span_len > 1


def _frames(scheduler: MaskingScheduler, requested: int) -> int:
    """A usable stage length at least a few spans long."""
    return scheduler.usable_frames(max(requested, 4 * scheduler.span_len))


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a bool [T] row."""
    runs, length = [], 0
    for value in row.tolist():
        if value:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    return runs + ([length] if length else [])


# ------------------------------------------------------------------------------ the checks
def check_protocol(factory: SchedulerFactory, config: BaseModel) -> None:
    """The factory builds a `MaskingScheduler` with a positive int ``span_len``."""
    scheduler = factory(config)
    expect(isinstance(scheduler, MaskingScheduler),
            f"{type(scheduler).__name__} lacks a method or attribute of magnetkit.interfaces.MaskingScheduler")
    expect(isinstance(scheduler.span_len, int) and scheduler.span_len >= 1,
            f"span_len must be an int >= 1, got {scheduler.span_len!r}")


def check_mask_rate(factory: SchedulerFactory, config: BaseModel) -> None:
    """gamma is float32, 1 at t=0, 0 at t=1, non-increasing and within [0, 1] (paper §3)."""
    scheduler = factory(config)
    t = torch.linspace(0, 1, 101)
    rate = scheduler.mask_rate(t)
    expect(rate.shape == t.shape, f"mask_rate must keep the shape of t, got {tuple(rate.shape)}")
    expect(rate.dtype == torch.float32, f"mask_rate must be float32, got {rate.dtype}")
    expect(abs(float(rate[0]) - 1) <= 1e-6, f"gamma(0) must be 1, got {float(rate[0])}")
    expect(abs(float(rate[-1])) <= 1e-6, f"gamma(1) must be 0, got {float(rate[-1])}")
    expect(bool((rate.diff() <= 1e-6).all()), "gamma must be non-increasing in t")
    expect(bool(((rate >= -1e-6) & (rate <= 1 + 1e-6)).all()), "gamma must stay within [0, 1]")
    scalar = scheduler.mask_rate(torch.tensor(0.5))
    expect(scalar.shape == (), "mask_rate of a 0-d tensor must be a 0-d tensor")


def check_sizes(factory: SchedulerFactory, config: BaseModel) -> None:
    """usable_frames drops at most a partial span and is stable; units tile the usable frames."""
    scheduler = factory(config)
    span = scheduler.span_len
    for num_frames in range(span, span + 40):
        usable = scheduler.usable_frames(num_frames)
        units = scheduler.num_units(num_frames)
        expect(num_frames - span < usable <= num_frames,
                f"usable_frames({num_frames}) = {usable}: at most a partial span may be dropped")
        expect(scheduler.usable_frames(usable) == usable, f"usable_frames must be stable at {usable}")
        expect(scheduler.num_units(usable) == units >= 1,
                f"num_units({num_frames}) = {units} must be >= 1 and equal num_units(usable_frames)")
        full = scheduler.unit_mask_to_tokens(torch.ones(2, units, dtype=torch.bool), usable)
        empty = scheduler.unit_mask_to_tokens(torch.zeros(2, units, dtype=torch.bool), usable)
        expect(full.shape == (2, usable) and full.dtype == torch.bool and bool(full.all()),
                f"every unit masked must mask all {usable} frames")
        expect(empty.shape == (2, usable) and not bool(empty.any()), "no unit masked must mask no frame")


def check_num_to_mask(factory: SchedulerFactory, config: BaseModel) -> None:
    """num_to_mask is in [1, U], U at the first step, 1 at the last, and non-increasing."""
    scheduler = factory(config)
    for num_steps in (1, 2, 3, 5, 10, 20):
        for units in (1, 2, 7, 50, 166):
            counts = [scheduler.num_to_mask(step, num_steps, units) for step in range(num_steps)]
            where = f"(num_steps={num_steps}, num_units={units}): {counts}"
            expect(all(isinstance(c, int) and 1 <= c <= units for c in counts),
                    f"counts must be ints in [1, U] {where}")
            expect(counts[0] == units, f"the first step masks every unit (gamma(0) = 1) {where}")
            expect(num_steps == 1 or counts[-1] == 1, f"the last step masks one unit (gamma(1) = 0) {where}")
            expect(all(a >= b for a, b in zip(counts, counts[1:])), f"counts must not increase {where}")


def check_unit_scores(factory: SchedulerFactory, config: BaseModel) -> None:
    """unit_scores is [B, U], finite, and scores a less confident unit higher, for both reductions."""
    scheduler = factory(config)
    num_frames = _frames(scheduler, 24)
    units = scheduler.num_units(num_frames)
    generator = torch.Generator().manual_seed(0)
    confidences = 0.05 + 0.9 * torch.rand(2, num_frames, generator=generator)
    one_hot = torch.zeros(2, units, dtype=torch.bool)
    low, high = one_hot.clone(), one_hot.clone()
    low[:, 0], high[:, 1] = True, True
    ordered = torch.full((2, num_frames), 0.5)
    ordered[scheduler.unit_mask_to_tokens(low, num_frames)] = 0.01
    ordered[scheduler.unit_mask_to_tokens(high, num_frames)] = 0.99
    for reduce in ("max", "prod"):
        scores = scheduler.unit_scores(confidences, reduce)
        expect(scores.shape == (2, units), f"unit_scores({reduce!r}) must be [B, {units}], got {tuple(scores.shape)}")
        expect(scores.is_floating_point() and bool(torch.isfinite(scores).all()),
                f"unit_scores({reduce!r}) must be finite floats")
        ranked = scheduler.unit_scores(ordered, reduce)
        expect(bool((ranked[:, 0] > ranked[:, 1]).all()),
                f"unit_scores({reduce!r}): a unit of confidence 0.01 must score above one of 0.99")
    try:
        scheduler.unit_scores(confidences, "mean")
    except ValueError:
        pass
    else:
        fail("unit_scores must raise ValueError for an unknown reduce")


def check_decode_mask(factory: SchedulerFactory, config: BaseModel) -> None:
    """decode_mask masks the requested units (or close, for stride-1 spans) and never a prompt."""
    scheduler = factory(config)
    num_frames = _frames(scheduler, 30)
    units = scheduler.num_units(num_frames)
    spans = _units_are_frames_with_spans(scheduler, num_frames)
    generator = torch.Generator().manual_seed(0)
    scores = torch.stack([torch.randperm(units, generator=generator) for _ in range(2)]).float()
    for count in sorted({1, max(1, units // 2), units}):
        mask = scheduler.decode_mask(scores, count, num_frames)
        where = f"(num_masked={count}, U={units}, T={num_frames})"
        expect(mask.shape == (2, num_frames) and mask.dtype == torch.bool, f"decode_mask must be bool [B, T] {where}")
        expect(torch.equal(mask, scheduler.decode_mask(scores, count, num_frames)),
                f"decode_mask must be deterministic {where}")
        if spans:
            target = max(count, scheduler.span_len)
            masked = mask.sum(dim=-1)
            expect(bool(((masked - target).abs() <= scheduler.span_len).all()),
                    f"stride-1 spans must mask within span_len of {target} frames, got {masked.tolist()} {where}")
            expect(all(run >= scheduler.span_len for row in mask for run in _runs(row)),
                    f"every masked run must be at least one span long {where}")
        else:
            top = torch.zeros(2, units, dtype=torch.bool).scatter(-1, scores.topk(count, dim=-1).indices, True)
            expect(torch.equal(mask, scheduler.unit_mask_to_tokens(top, num_frames)),
                    f"decode_mask must mask exactly the {count} highest-scoring units {where}")
    # A prompt's units carry PROMPT_SCORE and must survive the largest count the engine asks for
    # (every other unit), also at a stage's first step where all other scores are equal.
    prompt_units = units // 3
    is_prompt = torch.zeros(2, units, dtype=torch.bool)
    is_prompt[:, :prompt_units] = True
    prompt_frames = scheduler.unit_mask_to_tokens(is_prompt, num_frames)
    for others in (scores, torch.zeros_like(scores)):
        mask = scheduler.decode_mask(others.masked_fill(is_prompt, PROMPT_SCORE), units - prompt_units, num_frames)
        expect(not bool((mask & prompt_frames).any()), f"units scored {PROMPT_SCORE} (a prompt) must never be masked")


def check_training_mask(factory: SchedulerFactory, config: BaseModel) -> None:
    """Training masks are bool [B, T], seeded, at least one frame, at a mean rate of gamma(t), t ~ U(0, 1)."""
    scheduler = factory(config)
    num_frames = _frames(scheduler, 120)
    batch = 256
    mask = scheduler.training_mask(batch, num_frames, generator=torch.Generator().manual_seed(0))
    expect(mask.shape == (batch, num_frames) and mask.dtype == torch.bool, "training_mask must be bool [B, T]")
    again = scheduler.training_mask(batch, num_frames, generator=torch.Generator().manual_seed(0))
    other = scheduler.training_mask(batch, num_frames, generator=torch.Generator().manual_seed(1))
    expect(torch.equal(mask, again), "training_mask must be reproducible with a seeded generator")
    expect(not torch.equal(mask, other), "training_mask must depend on the generator")
    expect(bool(mask.any(dim=-1).all()), "every row of a training mask must mask at least one frame")
    expect(scheduler.training_mask(2, num_frames).shape == (2, num_frames), "generator=None must work")
    expected = float(scheduler.mask_rate(torch.linspace(0, 1, 10001)).mean())  # E[gamma(t)], t ~ U(0, 1)
    observed = float(mask.float().mean())
    expect(abs(observed - expected) < 0.05,
            f"mean training mask rate {observed:.3f} must be close to E[gamma(t)] = {expected:.3f}")
    sample = getattr(scheduler, "sample_training_mask", None)
    if sample is not None:
        mask, rates = sample(batch, num_frames, generator=torch.Generator().manual_seed(0))
        expect(rates.shape == (batch,), "sample_training_mask must return rates [B]")
        error = (mask.float().mean(dim=-1) - rates).abs().mean()
        expect(float(error) < 0.05, f"each row's mask rate must follow its own rate (mean error {float(error):.3f})")


def check_config_round_trip(factory: SchedulerFactory, config: BaseModel) -> None:
    """The config round-trips (dict and JSON), rejects unknown keys, and rebuilds the same scheduler."""
    check_config_serialises(config)
    first, second = factory(config), factory(type(config).model_validate(config.model_dump()))
    t = torch.linspace(0, 1, 11)
    expect(torch.equal(first.mask_rate(t), second.mask_rate(t)), "a rebuilt scheduler must have the same curve")
    num_frames = _frames(first, 60)
    expect(first.usable_frames(num_frames) == second.usable_frames(num_frames), "same usable_frames after rebuild")
    a = first.training_mask(8, num_frames, generator=torch.Generator().manual_seed(3))
    b = second.training_mask(8, num_frames, generator=torch.Generator().manual_seed(3))
    expect(torch.equal(a, b), "a rebuilt scheduler must draw the same training masks")


SCHEDULER_CHECKS: tuple[Callable[[SchedulerFactory, BaseModel], None], ...] = (
    check_protocol,
    check_mask_rate,
    check_sizes,
    check_num_to_mask,
    check_unit_scores,
    check_decode_mask,
    check_training_mask,
    check_config_round_trip,
)


def check_scheduler(factory: SchedulerFactory, config: BaseModel) -> None:
    """Run every scheduler check on ``factory(config)``.

    Args:
        factory: the callable a plugin registers (``factory(config) -> MaskingScheduler``).
        config: a config instance to build it from.

    Raises:
        AssertionError: naming the first broken expectation.
    """
    for check in SCHEDULER_CHECKS:
        check(factory, config)
