"""The sampler contract suite: shapes and ranges, seeded determinism, annealing steps, config.

A plugin author runs every check with ``check_sampler(MySampler, MyConfig())`` (add
``deterministic=True`` for a sampler that must ignore the generator, like greedy decoding);
each check is also importable on its own (`SAMPLER_CHECKS`). Checks raise ``AssertionError``.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from pydantic import BaseModel

from magnetkit.testing.checks import check_config_serialises, expect
from magnetkit.interfaces import Sampler, missing_members

__all__ = ["SAMPLER_CHECKS", "check_sampler"]

SamplerFactory = Callable[[Any], Sampler]

CARD = 32  # a small vocabulary keeps the suite fast


def _logits(seed: int = 0, batch: int = 2, frames: int = 7) -> torch.Tensor:
    return 4 * torch.randn(batch, frames, CARD, generator=torch.Generator().manual_seed(seed))


def _run(sampler: Sampler, logits: torch.Tensor, step: int, num_steps: int,
         seed: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return sampler(logits, step, num_steps, generator=generator, stage=0)  # as the engine calls it


# ------------------------------------------------------------------------------ the checks
def check_protocol(factory: SamplerFactory, config: BaseModel) -> None:
    """The factory builds a `Sampler`: ``span_scoring`` "max" or "prod", a bool ``positionwise``, ``check_stages``."""
    sampler = factory(config)
    missing = missing_members(sampler, Sampler)
    expect(not missing, f"{type(sampler).__name__} does not follow magnetkit.interfaces.Sampler: it lacks "
                        f"{', '.join(missing)}")
    expect(sampler.span_scoring in ("max", "prod"),
            f"span_scoring must be 'max' or 'prod', got {sampler.span_scoring!r}")
    expect(isinstance(sampler.positionwise, bool), f"positionwise must be a bool, got {sampler.positionwise!r}")
    expect(callable(sampler.check_stages), "check_stages must be a method: check_stages(num_stages) -> None")


def check_outputs(factory: SamplerFactory, config: BaseModel) -> None:
    """At every step: int64 tokens [B, T] in range, probabilities [B, T] in (0, 1], logits untouched."""
    sampler = factory(config)
    logits = _logits()
    original = logits.clone()
    for num_steps in (1, 4):
        for step in range(num_steps):
            tokens, probs = _run(sampler, logits, step, num_steps, seed=step)
            where = f"(step {step} of {num_steps})"
            expect(tokens.shape == logits.shape[:2] and tokens.dtype == torch.int64,
                    f"tokens must be int64 [B, T] {where}")
            expect(bool(((tokens >= 0) & (tokens < CARD)).all()), f"tokens must be in [0, card) {where}")
            expect(probs.shape == logits.shape[:2] and probs.is_floating_point(),
                    f"probabilities must be float [B, T] {where}")
            expect(bool(((probs > 0) & (probs <= 1 + 1e-6)).all()),
                    f"probabilities of chosen tokens must be in (0, 1] {where}")
    expect(torch.equal(logits, original), "a sampler must not modify the logits it is given")
    tokens, _ = _run(sampler, logits, 0, 4, seed=None)
    expect(tokens.shape == logits.shape[:2], "generator=None must work (torch's global generator)")


def check_determinism(factory: SamplerFactory, config: BaseModel) -> None:
    """The same seed gives the same tokens and probabilities."""
    sampler = factory(config)
    logits = _logits(seed=1, frames=50)
    first = _run(sampler, logits, 0, 3, seed=7)
    second = _run(sampler, logits, 0, 3, seed=7)
    expect(torch.equal(first[0], second[0]) and torch.equal(first[1], second[1]),
            "a sampler must be reproducible with a seeded generator")


def check_dominant_token(factory: SamplerFactory, config: BaseModel) -> None:
    """A token far more likely than all others is chosen, with probability about 1."""
    sampler = factory(config)
    logits = _logits(seed=2)
    favourite = torch.randint(0, CARD, logits.shape[:2], generator=torch.Generator().manual_seed(2))
    logits.scatter_(-1, favourite[..., None], 1e4)
    for step in (0, 3):
        tokens, probs = _run(sampler, logits, step, 4, seed=step)
        expect(torch.equal(tokens, favourite), f"a token with a logit 1e4 above the rest must be chosen (step {step})")
        expect(bool((probs > 0.99).all()), f"its probability must be about 1 (step {step}), got {probs.min():.3f}")


def check_greedy(factory: SamplerFactory, config: BaseModel) -> None:
    """A deterministic sampler returns the argmax of the logits whatever the generator."""
    sampler = factory(config)
    logits = _logits(seed=3, frames=50)
    for seed in (0, 1, None):
        tokens, _ = _run(sampler, logits, 1, 4, seed=seed)
        expect(torch.equal(tokens, logits.argmax(dim=-1)),
                f"greedy tokens must be the argmax of the logits (seed {seed})")


def check_config_round_trip(factory: SamplerFactory, config: BaseModel) -> None:
    """The config round-trips (dict and JSON), rejects unknown keys, and rebuilds the same sampler."""
    cls = type(config)
    check_config_serialises(config)
    logits = _logits(seed=4)
    first = _run(factory(config), logits, 1, 3, seed=5)
    second = _run(factory(cls.model_validate(config.model_dump())), logits, 1, 3, seed=5)
    expect(torch.equal(first[0], second[0]) and torch.equal(first[1], second[1]),
            "a sampler rebuilt from its dumped config must behave the same")


SAMPLER_CHECKS: tuple[Callable[[SamplerFactory, BaseModel], None], ...] = (
    check_protocol,
    check_outputs,
    check_determinism,
    check_dominant_token,
    check_config_round_trip,
)


def check_sampler(factory: SamplerFactory, config: BaseModel, *, deterministic: bool = False) -> None:
    """Run every sampler check on ``factory(config)``.

    Args:
        factory: the callable a plugin registers (``factory(config) -> Sampler``).
        config: a config instance to build it from.
        deterministic: also require argmax tokens independent of the generator (greedy decoding).

    Raises:
        AssertionError: naming the first broken expectation.
    """
    for check in SAMPLER_CHECKS + ((check_greedy,) if deterministic else ()):
        check(factory, config)
