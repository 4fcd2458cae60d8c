"""The pieces of a step: masking (paper §3.1), the summed loss, the schedule, the EMA, atomic checkpoint folders."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from magnetkit.train.checkpointing import list_checkpoints, prune, write_folder
from magnetkit.train.objective import cross_entropy_sum, draw_stage, mask_inputs
from magnetkit.train.optim import EMA, lr_factor

MASK = 16


def test_mask_keeps_earlier_stages_masks_the_stage_on_spans_and_later_stages_fully():
    codes = torch.randint(0, 16, (2, 4, 6))
    spans = torch.tensor([[1, 1, 1, 0, 0, 0], [0, 0, 1, 1, 1, 0]], dtype=torch.bool)
    valid = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]], dtype=torch.bool)
    inputs, loss_mask = mask_inputs(codes, spans, valid, stage=1, mask_id=MASK)
    assert inputs[:, 0, :4].equal(codes[:, 0, :4])  # stage 0 kept (where valid)
    assert (inputs[:, 1][spans] == MASK).all() and inputs[:, 1][~spans & valid].equal(codes[:, 1][~spans & valid])
    assert (inputs[:, 2:] == MASK).all()
    assert (inputs[1, :, 4:] == MASK).all()  # padding is masked everywhere
    assert loss_mask.equal(spans & valid)  # and never scored


def test_loss_is_the_sum_over_masked_positions_of_the_stage():
    generator = torch.Generator().manual_seed(0)  # unseeded, the mask was sometimes empty (expected = int 0)
    logits = torch.randn(2, 1, 5, 16, generator=generator)
    targets = torch.randint(0, 16, (2, 5), generator=generator)
    mask = torch.rand(2, 5, generator=generator) > 0.5
    assert mask.any()
    expected = sum(F.cross_entropy(logits[b, 0, t], targets[b, t], reduction="sum")
                   for b in range(2) for t in range(5) if mask[b, t])
    torch.testing.assert_close(cross_entropy_sum(logits, targets, mask), expected)


def test_stage_is_uniform_and_a_function_of_seed_and_step():
    stages = [draw_stage(0, step, 4) for step in range(400)]
    assert stages == [draw_stage(0, step, 4) for step in range(400)]
    assert all(60 < stages.count(k) < 140 for k in range(4))


def test_weighted_stages_follow_their_weights_and_uniform_weights_are_a_new_draw_not_an_error():
    stages = [draw_stage(0, step, 4, [4, 1, 1, 0]) for step in range(600)]
    assert stages == [draw_stage(0, step, 4, [4, 1, 1, 0]) for step in range(600)]
    assert 3 not in stages  # a zero weight never trains that stage
    assert 0.57 < stages.count(0) / 600 < 0.76 and all(60 < stages.count(k) < 140 for k in (1, 2))
    assert set(draw_stage(0, step, 4, [1, 1, 1, 1]) for step in range(100)) == {0, 1, 2, 3}


def test_stage_weights_must_fit_the_model():
    from magnetkit import UsageError
    from magnetkit.train.config import TrainConfig
    from magnetkit.train.objective import MaskedObjective

    with pytest.raises(UsageError, match="3 weights, the model has 4 codebooks"):
        MaskedObjective(4, MASK, [1, 1, 1])
    for bad in ([1, -1, 1, 1], [0, 0, 0, 0]):
        with pytest.raises(ValueError, match="positive sum"):
            TrainConfig(stage_weights=bad)


def test_warmup_then_cosine():
    assert lr_factor(0, 10, 100, 0.0) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.0) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100, 0.0) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100, 0.0) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(0, 0, 100, 0.0) == pytest.approx(1.0)


def test_ema_is_bias_corrected_and_swaps_in_and_out():
    module = nn.Linear(2, 2)
    ema = EMA(module, decay=0.5)
    with torch.no_grad():
        module.weight.fill_(2.0)
    ema.update(module)  # the first update copies the weights
    assert ema.state["weight"].eq(2.0).all()
    with torch.no_grad():
        module.weight.fill_(4.0)
    ema.update(module)  # count 1.5: moves 2/3 of the way
    assert ema.state["weight"].allclose(torch.full((2, 2), 2 + 2 * 2 / 3))
    with ema.applied(module):
        assert module.weight.allclose(ema.state["weight"])
    assert module.weight.eq(4.0).all()
    restored = EMA(module, decay=0.5)
    restored.load_state_dict(ema.state_dict())
    assert restored.count == 1.5 and restored.state["weight"].equal(ema.state["weight"])


def test_a_checkpoint_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "checkpoints" / "step-0000010"

    def fail(folder):
        (folder / "state.pt").write_bytes(b"half")
        raise KeyboardInterrupt  # killed while writing

    with pytest.raises(KeyboardInterrupt):
        write_folder(target, fail)
    assert not target.exists() and list((tmp_path / "checkpoints").iterdir()) == []
    for step in (10, 20, 30):
        write_folder(tmp_path / "checkpoints" / f"step-{step:07d}", lambda f: (f / "state.pt").write_bytes(b"x"))
    prune(tmp_path, keep_last=2)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [20, 30]


# ------------------------------------------------------------------- the objective units
class _Batch:
    def __init__(self, seed: int = 0):
        generator = torch.Generator().manual_seed(seed)
        self.codes = torch.randint(0, MASK, (2, 4, 12), generator=generator)
        self.spans = torch.rand(2, 12, generator=generator) < 0.5
        self.valid = torch.ones(2, 12, dtype=torch.bool)
        self.texts = ["a", None]


def _fake_lm(calls):
    def lm(inputs, texts, stage, condition_length=None, causal_prefix=0):
        calls.append((tuple(inputs.shape), stage, causal_prefix))
        heads = 1 if not causal_prefix else inputs.shape[1]
        return torch.log_softmax(inputs[:, :heads, :, None].float().expand(-1, -1, -1, MASK) * 0.1, dim=-1)
    return lm


def test_masked_objective_is_the_loop_step_of_paper_3_1():
    from contextlib import nullcontext

    from magnetkit.train.objective import MaskedObjective, StepDraw

    objective, batch, calls = MaskedObjective(4, MASK), _Batch(), []
    assert [objective.draw(0, step, 12).stage for step in range(50)] == [draw_stage(0, step, 4) for step in range(50)]
    assert objective.draw(0, 3, 12).prefix_frames == 0
    assert float(objective.scored_tokens(batch, StepDraw(1))) == float((batch.spans & batch.valid).sum())
    loss = objective.loss_sum(_fake_lm(calls), batch, StepDraw(2), 5, torch.device("cpu"), nullcontext)
    inputs, mask = mask_inputs(batch.codes, batch.spans, batch.valid, 2, MASK)
    expected = cross_entropy_sum(_fake_lm([])(inputs, batch.texts, 2), batch.codes[:, 2], mask)
    assert torch.equal(loss, expected) and calls == [((2, 4, 12), 2, 0)]


def test_the_loop_calls_the_recipe_s_objective_and_hybrid_without_a_prefix_is_the_masked_one():
    from contextlib import nullcontext

    from magnetkit.hybrid import HybridConfig
    from magnetkit.hybrid.objective import HybridObjective
    from magnetkit.recipe import load_recipe
    from magnetkit.train.loop import build_objective
    from magnetkit.train.objective import MaskedObjective, StepDraw

    base = {"codec": {"name": "encodec"}, "conditioner": {"name": "t5"},
            "model": {"dim": 32, "num_heads": 2, "num_layers": 1, "cardinality": MASK}}
    scheduler = type("S", (), {"span_len": 3})()
    assert isinstance(build_objective(load_recipe(base), scheduler), MaskedObjective)
    hybrid = build_objective(load_recipe({**base, "hybrid": {"prefix_prob": 1.0}}), scheduler)
    assert isinstance(hybrid, HybridObjective)
    assert all(hybrid.draw(0, step, 100).prefix_frames > 0 for step in range(20))
    never = HybridObjective(HybridConfig(prefix_prob=0.0), 4, MASK, 50.0, 3)
    assert all(never.draw(0, step, 12).prefix_frames == 0 for step in range(20))
    batch, cpu = _Batch(1), torch.device("cpu")
    plain = MaskedObjective(4, MASK).loss_sum(_fake_lm([]), batch, StepDraw(1), 5, cpu, nullcontext)
    assert torch.equal(never.loss_sum(_fake_lm([]), batch, StepDraw(1), 5, cpu, nullcontext), plain)
    calls = []
    with_prefix = never.loss_sum(_fake_lm(calls), batch, StepDraw(1, prefix_frames=4), 5, cpu, nullcontext)
    assert calls[0][2] == 4 + 4 and torch.isfinite(with_prefix)  # the prefix block: P + K columns, causal
