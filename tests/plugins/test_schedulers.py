"""The built-in masking schedulers: the contract suite, and exactness against audiocraft's MAGNeT."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from pydantic import ValidationError

from magnetkit.registry import get_registry
from magnetkit.testing.scheduler_contract import SCHEDULER_CHECKS, check_decode_mask, check_mask_rate, check_scheduler
from magnetkit_schedulers import (
    CosineConfig,
    CosineScheduler,
    LinearConfig,
    LinearScheduler,
    PowerConfig,
    PowerScheduler,
    expected_mask_rate,
    least_probable_spans,
    num_spans_table,
)

VARIANTS = [
    ("cosine", {}),
    ("cosine", {"arrangement": "stride1"}),
    ("cosine", {"span_len": 1}),
    ("cosine", {"span_len": 4, "arrangement": "stride1"}),
    ("linear", {}),
    ("linear", {"arrangement": "stride1"}),
    ("power", {}),
    ("power", {"exponent": 0.5, "span_len": 2}),
]


def cosine(**params) -> CosineScheduler:
    return CosineScheduler(CosineConfig(**params))


# ---------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("check", SCHEDULER_CHECKS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("name,params", VARIANTS, ids=[f"{n}-{p}" for n, p in VARIANTS])
def test_contract(name, params, check):
    spec = get_registry().get("scheduler", name)
    check(spec.factory, spec.config.model_validate(params))


def test_registered_by_the_plugin():
    specs = {s.name: s for s in get_registry().all("scheduler")}
    assert {"cosine", "linear", "power"} <= set(specs)
    assert all(specs[n].plugin == "schedulers" for n in ("cosine", "linear", "power"))
    assert specs["power"].config is PowerConfig and specs["cosine"].description.startswith("gamma(t) = cos")


class _Rising(CosineScheduler):
    def mask_rate(self, t):
        return 1 - super().mask_rate(t)


class _OneShort(CosineScheduler):
    def decode_mask(self, unit_scores, num_masked, num_frames):
        return super().decode_mask(unit_scores, max(num_masked - 1, 1), num_frames)


def test_contract_catches_broken_schedulers():
    with pytest.raises(AssertionError, match="gamma"):
        check_mask_rate(_Rising, CosineConfig())
    with pytest.raises(AssertionError, match="highest-scoring units"):
        check_decode_mask(_OneShort, CosineConfig())
    with pytest.raises(AssertionError):
        check_scheduler(_OneShort, CosineConfig(arrangement="stride1", span_len=1))


# ------------------------------------------------------------------------------ the curves
def test_curves():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(cosine().mask_rate(t), torch.cos(t * math.pi / 2))
    assert torch.equal(LinearScheduler(LinearConfig()).mask_rate(t), 1 - t)
    assert torch.allclose(PowerScheduler(PowerConfig(exponent=3.0)).mask_rate(t), 1 - t ** 3)
    assert cosine().mask_rate(torch.tensor(0.5, dtype=torch.float64)).dtype == torch.float32


# ---------------------------------------------------------------- decoding: how many to mask
def audiocraft_num_masked(step: int, num_steps: int, num_units: int) -> int:
    """audiocraft's count: float32 linspace point, float32 cosine, truncation, at least one."""
    timestep = torch.linspace(0, 1, num_steps)[step]
    mask_p = torch.cos(timestep * math.pi * 0.5)
    return max(int((mask_p * num_units).item()), 1)


def float64_num_masked(step: int, num_steps: int, num_units: int) -> int:
    """The same formula in float64: what a straightforward re-implementation computes."""
    t = step / (num_steps - 1) if num_steps > 1 else 0.0
    return max(int(math.cos(t * math.pi / 2) * num_units), 1)


def test_num_to_mask_is_audiocraft_float32():
    scheduler = cosine()
    differs = []
    for num_units in (20, 40, 50, 166):
        for num_steps in range(1, 41):
            for step in range(num_steps):
                ours = scheduler.num_to_mask(step, num_steps, num_units)
                assert ours == audiocraft_num_masked(step, num_steps, num_units)
                if ours != float64_num_masked(step, num_steps, num_units):
                    differs.append((num_units, num_steps, step))
    # At t = 2/3 gamma is exactly 1/2: float32 lands below it, float64 above, so float64 masks
    # one unit more. It happens at MAGNeT's default 10-step stages: a 10 s stage has 166 chunks.
    assert (166, 10, 6) in differs and (50, 19, 12) in differs
    assert scheduler.num_to_mask(6, 10, 166) == 82 and float64_num_masked(6, 10, 166) == 83
    assert [scheduler.num_to_mask(s, 10, 166) for s in range(10)] == [166, 163, 155, 143, 127, 106, 82, 56, 28, 1]


def test_num_to_mask_rejects_bad_steps():
    with pytest.raises(ValueError, match="step must be in"):
        cosine().num_to_mask(4, 4, 10)
    with pytest.raises(ValueError, match="num_units"):
        cosine().num_to_mask(0, 4, 0)


def test_counts_match_audiocraft_generations(reference):
    """Every LM input of audiocraft's nonoverlap generations masks num_to_mask chunks (x 3 frames)."""
    scheduler = cosine()
    for name, steps in (("gen_a", [4, 2, 2, 2]), ("gen_b", [4, 2, 2, 2])):
        inputs = reference[f"{name}_step_inputs"]  # [10, B, K, T]
        T = inputs.shape[-1]
        call = 0
        for stage, num_steps in enumerate(steps):
            for step in range(num_steps):
                masked = (inputs[call, :, stage] == 2048).sum(-1)
                expected = scheduler.num_to_mask(step, num_steps, scheduler.num_units(T)) * 3
                assert (masked == expected).all(), (name, stage, step, masked, expected)
                call += 1
    # stride-1 (gen_c): the span search lands within a span of the target number of frames.
    stride1 = cosine(arrangement="stride1")
    inputs = reference["gen_c_step_inputs"]
    call = 0
    for stage, num_steps in enumerate([4, 2, 2, 2]):
        for step in range(num_steps):
            masked = (inputs[call, :, stage] == 2048).sum(-1)
            target = max(stride1.num_to_mask(step, num_steps, 150), 3)
            assert (abs(masked - target) <= 3).all(), (stage, step, masked, target)
            call += 1


# ------------------------------------------------------------------ decoding: which to mask
def test_units_and_usable_frames():
    assert (cosine().num_units(100), cosine().usable_frames(100)) == (33, 99)
    assert (cosine().num_units(498), cosine().usable_frames(500)) == (166, 498)
    stride1 = cosine(arrangement="stride1")
    assert (stride1.num_units(100), stride1.usable_frames(100)) == (100, 100)
    assert (cosine(span_len=1).num_units(100), cosine(span_len=1).usable_frames(100)) == (100, 100)


def test_unit_scores_by_hand():
    confidences = torch.tensor([[0.5, 0.25, 1.0, 0.8, 0.8, 0.8]])
    assert torch.allclose(cosine().unit_scores(confidences, "max"), torch.tensor([[0.0, 0.2]]))
    prod = cosine().unit_scores(confidences, "prod")
    assert torch.allclose(prod, torch.tensor([[math.log(8), -3 * math.log(0.8)]]))
    for flat in (cosine(arrangement="stride1"), cosine(span_len=1)):
        for reduce in ("max", "prod"):  # frames always score -log p, as audiocraft's lps masking
            assert torch.allclose(flat.unit_scores(confidences, reduce), -torch.log(confidences))
    with pytest.raises(ValueError, match="whole number"):
        cosine().unit_scores(torch.rand(1, 7), "max")


def test_nonoverlap_mask_by_hand():
    mask = cosine().decode_mask(torch.tensor([[0.2, 0.9, 0.1, 0.5]]), 2, 12)
    assert mask.int().tolist() == [[0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1]]
    with pytest.raises(ValueError, match="usable_frames"):
        cosine().decode_mask(torch.zeros(1, 4), 2, 13)
    with pytest.raises(ValueError, match="num_masked"):
        cosine().decode_mask(torch.zeros(1, 4), 5, 12)


def test_tied_scores_pick_audiocraft_chunks():
    """At a stage's first step every score is 0; ties must resolve as audiocraft's topk on [B, 1, U]."""
    for units in (20, 33, 50, 166):
        for count in (1, units // 3, units - 1, units):
            ours = cosine().decode_mask(torch.zeros(2, units), count, 3 * units)
            picked = torch.zeros(2, 1, units).topk(count, dim=-1).indices  # audiocraft's layout
            chunks = torch.zeros(2, 1, units, dtype=torch.bool).scatter(2, picked, True)
            assert torch.equal(ours, chunks.repeat_interleave(3, dim=-1)[:, 0])
    assert not torch.equal(torch.zeros(50).topk(10).indices.sort().values, torch.arange(10)), \
        "ties are not resolved in index order, so the exact operation matters"


# Hand-worked stride-1 example (span 3). Frame scores (-log p) and the six span sums:
#   frames  0    1    2    3    4    5    6    7
#   score   0    6    0   0.5   1    2    1    0
#   span s0=6, s1=6.5, s2=1.5, s3=3.5, s4=4, s5=3 -> ranked s1, s0, s4, s3, s5, s2
# target 3 (and 1, raised to one span): bounds u in [1, 1] -> s1 = frames 1-3.
# target 4: bounds [1, 2], mid round(1.5) = 2 is a bound -> s1 + s0 = frames 0-3.
# target 5: bounds [1, 3], mid 2 -> 4 frames <= 5, low = 2, mid round(2.5) = 2 stops -> frames 0-3.
# target 6: bounds [2, 4], mid 3 -> s1 + s0 + s4 = frames 0-6 (7 > 6), high = 3, mid round(2.5) = 2
#           stops the search, and audiocraft returns the last mask built: 7 frames, not 4.
# target 7: bounds [2, 5], mid round(3.5) = 4 -> s1 s0 s4 s3 = frames 0-6 (7 <= 7), low = 4,
#           mid round(4.5) = 4 stops -> frames 0-6.
# target 8: bounds [2, 6], mid 4 -> 7 frames, low = 4, mid 5 -> + s5 = all 8 frames, low = 5,
#           mid round(5.5) = 6 (half to even) = high stops -> the u = 5 mask, frames 0-7.
STRIDE1_SCORES = torch.tensor([0, 6, 0, 0.5, 1, 2, 1, 0])
STRIDE1_CASES = {
    1: [0, 1, 1, 1, 0, 0, 0, 0],
    3: [0, 1, 1, 1, 0, 0, 0, 0],
    4: [1, 1, 1, 1, 0, 0, 0, 0],
    5: [1, 1, 1, 1, 0, 0, 0, 0],
    6: [1, 1, 1, 1, 1, 1, 1, 0],
    7: [1, 1, 1, 1, 1, 1, 1, 0],
    8: [1, 1, 1, 1, 1, 1, 1, 1],
}


@pytest.mark.parametrize("target", sorted(STRIDE1_CASES))
def test_stride1_mask_by_hand(target):
    assert least_probable_spans(STRIDE1_SCORES, target, 3).int().tolist() == STRIDE1_CASES[target]
    batch = torch.stack([STRIDE1_SCORES, STRIDE1_SCORES.flip(0)])
    mask = cosine(arrangement="stride1").decode_mask(batch, target, 8)
    assert mask[0].int().tolist() == STRIDE1_CASES[target]
    assert mask[1].int().tolist() == STRIDE1_CASES[target][::-1]  # each row searched on its own


def test_stride1_never_masks_a_prompt():
    scores = torch.rand(2, 60, generator=torch.Generator().manual_seed(0))
    scores[:, :21] = -1e4
    for target in (1, 10, 39):
        assert not cosine(arrangement="stride1").decode_mask(scores, target, 60)[:, :21].any()


# ------------------------------------------------------------------- training (App. C)
def test_table_by_hand():
    # T = 6, span 3: rate(u) = 1 - C(3, u) / C(6, u) = 0, 1/2, 4/5, 19/20, 1 for u = 0..4
    table = num_spans_table(6, 3)
    assert [table[m] for m in (0, 1, 50, 51, 80, 81, 95, 96, 100)] == [0, 1, 1, 2, 2, 3, 3, 4, 4]


@pytest.mark.parametrize("num_frames", [6, 30, 150, 498, 500])
@pytest.mark.parametrize("span_len", [2, 3, 4])
def test_table_matches_closed_form(num_frames, span_len):
    """Entry m is the fewest spans whose mean mask rate 1 - C(T-l, u)/C(T, u) reaches m% (App. C)."""
    exact = [1 - Fraction(math.comb(num_frames - span_len, u), math.comb(num_frames, u)) for u in range(num_frames)]
    table = num_spans_table(num_frames, span_len)
    for percent, spans in enumerate(table):
        goal = Fraction(percent, 100)
        first = next((u for u, rate in enumerate(exact) if rate >= goal), num_frames)
        if spans != first:
            # Only where the exact rate equals the goal can audiocraft's float product fall 1 ulp
            # short of it and take one span more.
            assert exact[first] == goal and spans == first + 1, (percent, spans, first)
        if spans < num_frames:
            assert math.isclose(expected_mask_rate(spans, num_frames, span_len), float(exact[spans]))


def test_table_follows_audiocraft_float_at_a_tie():
    # 1 - 27/30 is exactly 1/10, but in float64 1 - 0.9 = 0.09999999999999998 < 0.1.
    assert num_spans_table(30, 3)[10] == 2
    assert cosine().mask_rate_to_num_spans(torch.tensor([0.0, 0.1, 1.0]), 30).tolist() == [1, 2, 28]


def audiocraft_training_mask(scheduler, batch, num_frames, generator):
    """audiocraft's solver: t ~ U(0, 1), rate gamma(t), rounded-percent table, rand-argsort starts."""
    t = torch.zeros((batch,)).float().uniform_(0, 1, generator=generator)
    rates = torch.cos(t * math.pi * 0.5)
    table = torch.tensor(num_spans_table(num_frames, scheduler.span_len))
    k = table[torch.round(100 * rates).long()].clamp(min=1)
    starts = torch.rand((batch, num_frames), generator=generator).argsort(dim=-1) < k[:, None]
    mask, shifted = starts, starts.clone()
    for _ in range(scheduler.span_len - 1):
        shifted = torch.cat([torch.zeros(batch, 1, dtype=torch.bool), shifted[:, :-1]], dim=1)
        mask = mask | shifted
    return mask, rates


def test_training_mask_is_audiocraft_draw():
    scheduler = cosine()
    mask, rates = scheduler.sample_training_mask(64, 150, generator=torch.Generator().manual_seed(11))
    ref_mask, ref_rates = audiocraft_training_mask(scheduler, 64, 150, torch.Generator().manual_seed(11))
    assert torch.equal(rates, ref_rates) and torch.equal(mask, ref_mask)
    again = scheduler.training_mask(64, 150, generator=torch.Generator().manual_seed(11))
    assert torch.equal(again, mask)


def test_training_mask_single_frames():
    mask, rates = cosine(span_len=1).sample_training_mask(32, 100, generator=torch.Generator().manual_seed(0))
    assert torch.equal(mask.sum(-1), (100 * rates).round().clamp(min=1).long())


def test_training_mask_rejects_short_sequences():
    with pytest.raises(ValueError, match="cannot hold a span"):
        cosine().training_mask(2, 2)


# -------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("params,field", [
    ({"span_len": 0}, "span_len"),
    ({"arrangement": "random"}, "arrangement"),
    ({"spanlen": 3}, "spanlen"),
])
def test_config_validation(params, field):
    with pytest.raises(ValidationError) as info:
        CosineConfig.model_validate(params)
    assert info.value.errors()[0]["loc"] == (field,)


def test_power_exponent_validation():
    with pytest.raises(ValidationError, match="greater than 0"):
        PowerConfig(exponent=0)
    with pytest.raises(ValidationError):
        PowerConfig(exponent=float("inf"))
    assert PowerConfig().exponent == 2.0 and CosineConfig().model_dump() == {"span_len": 3, "arrangement": "nonoverlap"}
