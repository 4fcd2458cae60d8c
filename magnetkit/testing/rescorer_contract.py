"""The rescorer contract suite: shapes and ranges, masked stages, determinism, independent rows, config.

A plugin author runs every check with
``check_rescorer(factory, config, num_codebooks=4, cardinality=2048)`` (plus the keyword
context the factory needs, e.g. ``pipeline=...``); each check is also importable on its own
(`RESCORER_CHECKS`). Checks raise ``AssertionError``. See `magnetkit.interfaces.Rescorer`.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from pydantic import BaseModel

from magnetkit.interfaces import Rescorer
from magnetkit.testing.checks import check_config_serialises, expect

__all__ = ["RESCORER_CHECKS", "RescorerContract", "check_rescorer"]

RescorerFactory = Callable[..., Rescorer]
TEXTS: list[str | None] = ["happy rock", None, "sad slow piano"]


class RescorerContract:
    """What the checks build and feed: the factory, its config and context, and the token space."""

    def __init__(self, factory: RescorerFactory, config: BaseModel, *, num_codebooks: int, cardinality: int,
                 frames: int = 9, context: dict[str, Any] | None = None) -> None:
        self.factory, self.config = factory, config
        self.num_codebooks, self.cardinality, self.frames = num_codebooks, cardinality, frames
        self.context = {"role": "rescorer", **(context or {})}

    def build(self, config: BaseModel | None = None) -> Rescorer:
        """The rescorer, built as the core builds it (``factory(config, pipeline=..., role=...)``)."""
        return self.factory(config or self.config, **self.context)

    def codes(self, batch: int = len(TEXTS), decoded_stages: int | None = None, seed: int = 0) -> torch.Tensor:
        """Candidate codes [B, K, T] as the engine passes them: stages not decoded yet hold the mask id."""
        generator = torch.Generator().manual_seed(seed)
        codes = torch.randint(0, self.cardinality, (batch, self.num_codebooks, self.frames), generator=generator)
        decoded = self.num_codebooks // 2 if decoded_stages is None else decoded_stages
        codes[:, max(decoded, 1):] = self.cardinality  # stage 0 is always being decoded
        return codes


# ------------------------------------------------------------------------------ the checks
def check_protocol(contract: RescorerContract) -> None:
    """The factory builds a `Rescorer` with a weight in [0, 1] and a boolean ``applies``."""
    rescorer = contract.build()
    expect(isinstance(rescorer, Rescorer), f"{type(rescorer).__name__} does not follow magnetkit.interfaces.Rescorer "
                                           "(weight, applies, token_probs)")
    expect(isinstance(rescorer.weight, (int, float)) and 0 <= rescorer.weight <= 1,
           f"weight must be a number in [0, 1], got {rescorer.weight!r}")
    for stage in range(contract.num_codebooks):
        for step in (0, 1, 5):
            expect(isinstance(rescorer.applies(stage, step), bool), f"applies({stage}, {step}) must return a bool")


def check_outputs(contract: RescorerContract) -> None:
    """Float probabilities [B, K, T] in [0, 1] for codes with masked stages and null texts; codes untouched."""
    rescorer = contract.build()
    for decoded in (1, contract.num_codebooks):
        codes = contract.codes(decoded_stages=decoded)
        original = codes.clone()
        probs = rescorer.token_probs(codes, TEXTS)
        where = f"({decoded} of {contract.num_codebooks} stages decoded)"
        expect(isinstance(probs, torch.Tensor) and probs.shape == codes.shape and probs.is_floating_point(),
               f"token_probs must return float [B, K, T] = {list(codes.shape)} {where}, got "
               f"{getattr(probs, 'shape', type(probs))}")
        probs = probs.float().cpu()
        expect(bool(torch.isfinite(probs).all()), f"probabilities must be finite {where}")
        expect(bool(((probs >= 0) & (probs <= 1 + 1e-5)).all()), f"probabilities must be in [0, 1] {where}")
        expect(torch.equal(codes, original), "a rescorer must not modify the codes it is given")


def check_determinism(contract: RescorerContract) -> None:
    """The same codes and texts give the same probabilities (twice from one rescorer)."""
    rescorer = contract.build()
    codes = contract.codes(seed=1)
    first, second = rescorer.token_probs(codes, TEXTS), rescorer.token_probs(codes, TEXTS)
    expect(torch.equal(first, second), "token_probs must be deterministic (no randomness in scoring)")


def check_rows_independent(contract: RescorerContract) -> None:
    """A row's probabilities do not depend on the other rows of the batch (to float rounding)."""
    rescorer = contract.build()
    codes = contract.codes(seed=2)
    together = rescorer.token_probs(codes, TEXTS).float().cpu()
    for row, text in enumerate(TEXTS):
        alone = rescorer.token_probs(codes[row:row + 1], [text]).float().cpu()
        expect(torch.allclose(alone[0], together[row], atol=1e-4),
               f"row {row}'s probabilities change with the rest of the batch "
               f"(max difference {float((alone[0] - together[row]).abs().max()):.2e})")


def check_config_round_trip(contract: RescorerContract) -> None:
    """The config round-trips (dict and JSON), rejects unknown keys, and rebuilds the same rescorer."""
    check_config_serialises(contract.config)
    rebuilt_config = type(contract.config).model_validate(contract.config.model_dump())
    first, second = contract.build(), contract.build(rebuilt_config)
    codes = contract.codes(seed=3)
    expect(first.weight == second.weight, "a rescorer rebuilt from its dumped config must have the same weight")
    grid = [(stage, step) for stage in range(contract.num_codebooks) for step in range(4)]
    expect([first.applies(*at) for at in grid] == [second.applies(*at) for at in grid],
           "a rescorer rebuilt from its dumped config must apply at the same stages and steps")
    expect(torch.allclose(first.token_probs(codes, TEXTS), second.token_probs(codes, TEXTS)),
           "a rescorer rebuilt from its dumped config must score the same")


RESCORER_CHECKS: tuple[Callable[[RescorerContract], None], ...] = (
    check_protocol,
    check_outputs,
    check_determinism,
    check_rows_independent,
    check_config_round_trip,
)


def check_rescorer(factory: RescorerFactory, config: BaseModel, *, num_codebooks: int, cardinality: int,
                   frames: int = 9, **context: Any) -> None:
    """Run every rescorer check on ``factory(config, role="rescorer", **context)``.

    Args:
        factory: the callable a plugin registers.
        config: a config instance to build it from.
        num_codebooks: K of the token space the rescorer scores.
        cardinality: the codebook size; the mask id of undecoded stages is this value.
        frames: T of the candidate codes.
        context: keyword arguments the core passes the factory (e.g. ``pipeline``).

    Raises:
        AssertionError: naming the first broken expectation.
    """
    contract = RescorerContract(factory, config, num_codebooks=num_codebooks, cardinality=cardinality,
                                frames=frames, context=context)
    for check in RESCORER_CHECKS:
        check(contract)
