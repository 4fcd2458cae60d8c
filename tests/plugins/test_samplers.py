"""The built-in samplers: the contract suite, annealing, and audiocraft's random draws."""

from __future__ import annotations

import math

import pytest
import torch
from pydantic import ValidationError

from magnetkit.registry import get_registry
from magnetkit.testing.sampler_contract import SAMPLER_CHECKS, check_greedy, check_outputs, check_sampler
from magnetkit_samplers import (
    GreedyConfig,
    GreedySampler,
    TopKConfig,
    TopKSampler,
    TopPConfig,
    TopPSampler,
    annealed_temperature,
)

VARIANTS = [
    ("top_p", {}),
    ("top_p", {"top_p": 1.0, "anneal": False, "span_scoring": "prod"}),
    ("top_p", {"top_p": 0.05, "temperature": 0.5}),
    ("top_k", {}),
    ("top_k", {"top_k": 1}),
    ("top_k", {"top_k": 5, "anneal": False}),
    ("greedy", {}),
    ("greedy", {"anneal": False, "span_scoring": "prod"}),
]


# ---------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("check", SAMPLER_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name,params", VARIANTS, ids=[f"{n}-{p}" for n, p in VARIANTS])
def test_contract(name, params, check):
    spec = get_registry().get("sampler", name)
    check(spec.factory, spec.config.model_validate(params))


@pytest.mark.parametrize("params", [{}, {"anneal": False, "temperature": 10.0}])
def test_greedy_is_deterministic(params):
    check_sampler(GreedySampler, GreedyConfig(**params), deterministic=True)


def test_registered_by_the_plugin():
    specs = {s.name: s for s in get_registry().all("sampler")}
    assert {"top_p", "top_k", "greedy"} <= set(specs)
    assert all(specs[n].plugin == "samplers" for n in ("top_p", "top_k", "greedy"))
    assert specs["top_p"].config is TopPConfig


class _InPlace(TopPSampler):
    def __call__(self, logits, step, num_steps, generator=None, stage=None):
        logits.div_(2)  # a classic bug: scaling the caller's logits in place
        return super().__call__(logits, step, num_steps, generator, stage)


def test_contract_catches_broken_samplers():
    with pytest.raises(AssertionError, match="must not modify the logits"):
        check_outputs(_InPlace, TopPConfig())
    with pytest.raises(AssertionError, match="argmax"):
        check_greedy(TopPSampler, TopPConfig(anneal=False))


# ---------------------------------------------------------------------------- temperature
def test_linear_annealing():
    # steps_left = num_steps - 1 - step; t = temperature * steps_left / num_steps, floored at 1e-2
    sampler = TopPSampler(TopPConfig(temperature=3.0))
    assert [sampler.temperature_at(s, 4) for s in range(4)] == [2.25, 1.5, 0.75, 0.01]
    assert annealed_temperature(3.0, 3, 4, anneal=True) == 0.0
    assert [TopPSampler(TopPConfig(anneal=False)).temperature_at(s, 4) for s in range(4)] == [3.0] * 4


@pytest.mark.parametrize("step", [0, 2, 3])
def test_confidences_are_the_tempered_softmax(step):
    logits = torch.randn(2, 9, 40, generator=torch.Generator().manual_seed(0))
    t = max(3.0 * (3 - step) / 4, 1e-2)
    probs = torch.softmax(logits / t, dim=-1)
    for sampler in (GreedySampler(GreedyConfig()), TopPSampler(TopPConfig())):
        tokens, confidences = sampler(logits, step, 4, torch.Generator().manual_seed(1))
        assert torch.equal(confidences, probs.gather(-1, tokens[..., None])[..., 0])
    greedy_tokens, _ = GreedySampler(GreedyConfig())(logits, step, 4)
    assert torch.equal(greedy_tokens, logits.argmax(-1))


# --------------------------------------------------------------------------------- top-p
def test_top_p_hand_computed_draw():
    # p = [0.15, 0.45, 0.02, 0.3, 0.08]; ranked 0.45 (token 1), 0.3 (token 3), 0.15, 0.08, 0.02.
    # The mass ranked above each is 0, 0.45, 0.75, ...: top_p = 0.7 keeps tokens 1 and 3,
    # renormalised to 0.6 and 0.4. audiocraft draws once on the ranked rows [B*T, card].
    p = torch.tensor([0.15, 0.45, 0.02, 0.3, 0.08])
    logits = p.log().expand(2, 6, 5).clone()
    sampler = TopPSampler(TopPConfig(top_p=0.7, temperature=1.0, anneal=False, audiocraft_stream=True))
    tokens, confidences = sampler(logits, 0, 1, torch.Generator().manual_seed(42))

    ranked_rows = torch.tensor([[0.6, 0.4, 0.0, 0.0, 0.0]]).expand(12, 5)
    drawn = torch.multinomial(ranked_rows, 1, generator=torch.Generator().manual_seed(42)).reshape(2, 6)
    expected = torch.where(drawn == 0, 1, 3)
    assert torch.equal(tokens, expected)
    assert torch.allclose(confidences, torch.where(expected == 1, 0.45, 0.3))
    assert set(expected.flatten().tolist()) == {1, 3}  # the seed draws both kept tokens


@pytest.mark.parametrize("stream", [False, True])
def test_top_p_frequencies(stream):
    p = torch.tensor([0.15, 0.45, 0.02, 0.3, 0.08])
    sampler = TopPSampler(TopPConfig(top_p=0.7, temperature=1.0, anneal=False, audiocraft_stream=stream))
    tokens, confidences = sampler(p.log().expand(1, 4000, 5).clone(), 0, 1, torch.Generator().manual_seed(0))
    assert set(tokens.unique().tolist()) == {1, 3}
    assert abs(float((tokens == 1).float().mean()) - 0.6) < 0.03
    assert torch.allclose(confidences, torch.where(tokens == 1, 0.45, 0.3))


def audiocraft_top_p_step(logits: torch.Tensor, temp: float, p: float, generator: torch.Generator):
    """audiocraft's step on [B, 1, T, card]: tempered softmax, sample_top_p, confidences."""
    probs = torch.softmax(logits[:, None] / max(temp, 1e-2), dim=-1)
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    probs_sort *= (~(probs_sum - probs_sort > p)).float()
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    flat = torch.multinomial(probs_sort.reshape(-1, probs.shape[-1]), num_samples=1, generator=generator)
    tokens = torch.gather(probs_idx, -1, flat.reshape(*probs.shape[:-1], 1))
    return tokens[:, 0, :, 0], torch.gather(probs, 3, tokens)[:, 0, :, 0]


def test_top_p_reproduces_audiocraft_stream():
    """Several steps in a row on card-2048 logits consume the generator exactly as audiocraft (gen_s)."""
    sampler = TopPSampler(TopPConfig(audiocraft_stream=True))
    ours, theirs = torch.Generator().manual_seed(42), torch.Generator().manual_seed(42)
    for step in range(4):
        logits = 5 * torch.randn(2, 60, 2048, generator=torch.Generator().manual_seed(step))
        tokens, probs = sampler(logits, step, 4, ours)
        ref_tokens, ref_probs = audiocraft_top_p_step(logits, 3.0 * (3 - step) / 4, 0.9, theirs)
        assert torch.equal(tokens, ref_tokens) and torch.equal(probs, ref_probs), step


# --------------------------------------------------------------------------------- top-k
def audiocraft_top_k_step(logits: torch.Tensor, temp: float, k: int, generator: torch.Generator):
    """audiocraft's step with sample_top_k, which renormalises ``probs`` in place before the gather."""
    probs = torch.softmax(logits[:, None] / max(temp, 1e-2), dim=-1)
    kth = torch.topk(probs, k, dim=-1)[0][..., [-1]]
    probs *= (probs >= kth).float()
    probs.div_(probs.sum(dim=-1, keepdim=True))
    flat = torch.multinomial(probs.reshape(-1, probs.shape[-1]), num_samples=1, generator=generator)
    tokens = flat.reshape(*probs.shape[:-1], 1)
    return tokens[:, 0, :, 0], torch.gather(probs, 3, tokens)[:, 0, :, 0]


def test_top_k_reproduces_audiocraft_stream():
    sampler = TopKSampler(TopKConfig(top_k=50, audiocraft_stream=True))
    ours, theirs = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    for step in range(3):
        logits = 5 * torch.randn(2, 60, 2048, generator=torch.Generator().manual_seed(step))
        tokens, probs = sampler(logits, step, 3, ours)
        ref_tokens, ref_probs = audiocraft_top_k_step(logits, 3.0 * (2 - step) / 3, 50, theirs)
        assert torch.equal(tokens, ref_tokens) and torch.equal(probs, ref_probs), step


@pytest.mark.parametrize("stream", [False, True])
def test_top_k_keeps_k_tokens(stream):
    logits = torch.randn(1, 2000, 16, generator=torch.Generator().manual_seed(0))
    tokens, _ = TopKSampler(TopKConfig(top_k=3, anneal=False, temperature=1.0, audiocraft_stream=stream))(logits, 0, 1)
    top3 = logits.topk(3, dim=-1).indices
    assert (tokens[..., None] == top3).any(-1).all()
    assert len(tokens.unique()) > 3  # every row draws among its own three
    tokens, _ = TopKSampler(TopKConfig(top_k=1, audiocraft_stream=stream))(logits, 0, 4)
    assert torch.equal(tokens, logits.argmax(-1))


# -------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("config,params,field,message", [
    (TopPConfig, {"top_p": 1.5}, "top_p", "less than or equal to 1"),
    (TopPConfig, {"top_p": 0}, "top_p", "greater than 0"),
    (TopPConfig, {"temperature": 0}, "temperature", "greater than 0"),
    (TopPConfig, {"temperature": float("nan")}, "temperature", "finite"),
    (TopKConfig, {"top_k": 0}, "top_k", "greater than or equal to 1"),
    (GreedyConfig, {"span_scoring": "mean"}, "span_scoring", "'max' or 'prod'"),
    (GreedyConfig, {"top_p": 0.9}, "top_p", "Extra inputs"),
    (TopPConfig, {"stage_temperatures": [1.0, 0.0]}, "stage_temperatures", "one positive temperature"),
    (TopPConfig, {"stage_temperatures": []}, "stage_temperatures", "one positive temperature"),
])
def test_config_validation(config, params, field, message):
    with pytest.raises(ValidationError) as info:
        config.model_validate(params)
    error = info.value.errors()[0]
    assert error["loc"] == (field,) and message in error["msg"]


def test_defaults():
    assert TopPConfig().model_dump() == {"temperature": 3.0, "anneal": True, "span_scoring": "max",
                                         "stage_temperatures": None, "audiocraft_stream": False, "top_p": 0.9,
                                         "cpu_kernel": True}
    assert TopKConfig().top_k == 250 and GreedyConfig().temperature == 3.0


def test_bad_calls_are_value_errors():
    sampler = TopPSampler(TopPConfig())
    with pytest.raises(ValueError, match=r"\[B, T, card\]"):
        sampler(torch.randn(2, 5), 0, 1)
    with pytest.raises(ValueError, match="step"):
        sampler(torch.randn(1, 2, 5), 1, 1)


def test_last_step_floor():
    # At the last annealed step t is 0; the 1e-2 floor keeps the softmax finite.
    logits = torch.tensor([[[0.0, 0.01, -1.0]]])
    _, probs = GreedySampler(GreedyConfig())(logits, 3, 4)
    assert math.isclose(float(probs), 1 / (1 + math.exp(-1) + math.exp(-101)), rel_tol=1e-6)


def test_stage_temperatures_replace_the_temperature_per_stage():
    sampler = TopPSampler(TopPConfig(temperature=3.0, stage_temperatures=[2.0, 0.5]))
    # Annealed like temperature: start * steps_left / num_steps, steps_left = num_steps - 1 - step.
    assert sampler.temperature_at(0, 4, stage=0) == 1.5 and sampler.temperature_at(0, 4, stage=1) == 0.375
    assert sampler.temperature_at(2, 4, stage=1) == 0.125
    assert sampler.temperature_at(0, 4) == 2.25  # no stage given: temperature
    logits = torch.randn(1, 5, 8, generator=torch.Generator().manual_seed(0))
    greedy = GreedySampler(GreedyConfig(stage_temperatures=[1.0, 0.5], anneal=False))
    _, confidences = greedy(logits, 0, 2, stage=1)
    assert torch.allclose(confidences, torch.softmax(logits / 0.5, dim=-1).max(-1).values)
    with pytest.raises(ValueError, match="stage 2"):
        sampler(logits, 0, 4, stage=2)
