"""The rescorer contract suite passes a correct rescorer and names what is wrong with broken ones."""

from __future__ import annotations

import pytest
import torch
from pydantic import BaseModel, ConfigDict, Field

from magnetkit.testing import check_rescorer
from magnetkit.testing.rescorer_contract import RESCORER_CHECKS, RescorerContract

K, CARD = 3, 16


class UniformConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weight: float = Field(0.5, ge=0, le=1)
    stages: list[int] | None = None


class Uniform:
    """Every decoded token has probability 1 / card; masked ones 0."""

    def __init__(self, config: UniformConfig, *, pipeline=None, role: str = "rescorer") -> None:
        self.config, self.weight = config, config.weight

    def applies(self, stage: int, step: int) -> bool:
        return self.config.stages is None or stage in self.config.stages

    def token_probs(self, codes: torch.Tensor, texts) -> torch.Tensor:
        return torch.where(codes < CARD, 1.0 / CARD, 0.0)


class WrongShape(Uniform):
    def token_probs(self, codes, texts):
        return super().token_probs(codes, texts)[:, 0]


class NotProbabilities(Uniform):
    def token_probs(self, codes, texts):
        return codes.float()


class Overwrites(Uniform):
    def token_probs(self, codes, texts):
        codes.clamp_(max=CARD - 1)  # "fixes" the mask ids in the caller's tensor
        return super().token_probs(codes, texts)


class Random(Uniform):
    def token_probs(self, codes, texts):
        return torch.rand(codes.shape)


class BatchNormalised(Uniform):
    def token_probs(self, codes, texts):
        scores = codes.float() + 1
        return scores / scores.sum()  # depends on the other rows


class NoWeight:
    def __init__(self, config, **context):
        pass

    def applies(self, stage, step):
        return True

    def token_probs(self, codes, texts):
        return torch.zeros(codes.shape)


def test_a_correct_rescorer_passes():
    check_rescorer(Uniform, UniformConfig(stages=[0, 2]), num_codebooks=K, cardinality=CARD)


@pytest.mark.parametrize("factory, message", [
    (WrongShape, r"token_probs must return float \[B, K, T\]"),
    (NotProbabilities, r"probabilities must be in \[0, 1\]"),
    (Overwrites, "must not modify the codes"),
    (Random, "must be deterministic"),
    (BatchNormalised, "change with the rest of the batch"),
    (NoWeight, "does not follow magnetkit.interfaces.Rescorer"),
])
def test_broken_rescorers_fail_with_a_reason(factory, message):
    with pytest.raises(AssertionError, match=message):
        check_rescorer(factory, UniformConfig(), num_codebooks=K, cardinality=CARD)


def test_each_check_runs_alone_and_the_factory_gets_the_core_context():
    received = {}

    def factory(config, **context):
        received.update(context)
        return Uniform(config)

    contract = RescorerContract(factory, UniformConfig(), num_codebooks=K, cardinality=CARD, context={"pipeline": 1})
    for check in RESCORER_CHECKS:
        check(contract)
    assert received == {"pipeline": 1, "role": "rescorer"}
    codes = contract.codes(decoded_stages=1)
    assert (codes[:, 1:] == CARD).all() and (codes[:, 0] < CARD).all()
