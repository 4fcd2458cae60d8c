"""Single-model Hybrid-MAGNeT: causal prefix attention, cached prefix decoding, objective, generation."""

import pytest
import torch
from hybrid_helpers import CARD, make_pipeline, tiny_model

from magnetkit.errors import UsageError
from magnetkit.hybrid import (
    HybridConfig,
    HybridGenerator,
    MagnetSession,
    decode_prefix,
    hybrid_loss,
    prefix_block,
    sample_prefix_frames,
)
from magnetkit.hybrid.pattern import delay, pattern_mask
from magnetkit.registry import build

K = 4


def random_codes(batch, frames, seed=0):
    return torch.randint(0, CARD, (batch, K, frames), generator=torch.Generator().manual_seed(seed))


def test_causal_prefix_sees_only_the_past_and_the_rest_sees_the_prefix():
    model = tiny_model().eval()
    condition = torch.randn(2, 3, 32)
    codes = random_codes(2, 20)
    assert torch.equal(model(codes, condition, 1), model(codes, condition, 1, causal_prefix=0))
    base = model(codes, condition, 1, causal_prefix=8)
    later = codes.clone()
    later[..., 8:] = (later[..., 8:] + 1) % CARD
    torch.testing.assert_close(model(later, condition, 1, causal_prefix=8)[:, :, :8], base[:, :, :8])
    middle = codes.clone()
    middle[..., 5] = (middle[..., 5] + 1) % CARD
    changed = model(middle, condition, 1, causal_prefix=8)
    torch.testing.assert_close(changed[:, :, :5], base[:, :, :5])  # causal: earlier prefix rows unchanged
    assert not torch.allclose(changed[:, :, 8:14], base[:, :, 8:14])  # the rest attends to the prefix
    torch.testing.assert_close(changed[:, :, 16:], base[:, :, 16:])  # stage 1 keeps the ±5 band (x 2 layers)
    with pytest.raises(UsageError, match="causal_prefix"):
        model(codes, condition, 0, causal_prefix=21)


@pytest.mark.parametrize("positions, scale", [("sin", 1.0), ("rope", 1.0), ("sin_rope", 1.0), ("sin_rope", 0.1)])
def test_cached_session_computes_what_the_full_forward_computes(positions, scale):
    model = tiny_model(positions=positions, positional_scale=scale).eval()
    condition = torch.randn(2, 3, 32)
    block = prefix_block(random_codes(2, 6), CARD)  # [2, 4, 10]
    full = model(block, condition, 0, causal_prefix=block.shape[-1])  # [2, 4, 10, card]
    session = MagnetSession(model, condition, block.shape[-1])
    stepped = torch.stack([session.step(block[..., c]) for c in range(block.shape[-1])], dim=2)
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="sized for"):
        session.step(block[..., 0])


def test_objective_has_both_parts_and_plain_batches_have_no_prefix_loss():
    model = tiny_model()
    scheduler = build("scheduler", "cosine")
    codes, condition = random_codes(2, 30), torch.randn(2, 3, 32)
    config = HybridConfig(ar_loss_weight=0.5)
    hybrid = hybrid_loss(model, codes, condition, scheduler, config, prefix_frames=7, stage=2,
                         generator=torch.Generator().manual_seed(0))
    assert hybrid.prefix_frames == 7 and hybrid.stage == 2
    expected_loss = (hybrid.masked_sum + 0.5 * hybrid.autoregressive_sum) / (hybrid.masked_count
                                                                           + 0.5 * hybrid.autoregressive_count)
    torch.testing.assert_close(hybrid.loss, expected_loss)
    assert int(hybrid.autoregressive_count) == 2 * 7 * K
    assert 0 < float(hybrid.autoregressive) < 10 and 0 < float(hybrid.masked) < 10
    plain = hybrid_loss(model, codes, condition, scheduler, config, prefix_frames=0, stage=0)
    assert float(plain.autoregressive) == 0 and plain.loss.requires_grad
    # The prefix loss is exactly next-token cross-entropy on the delayed prefix, every codebook.
    block = prefix_block(codes[..., :7], CARD)
    logits = model(torch.cat([block, codes[..., 7:]], -1), condition, 0, causal_prefix=block.shape[-1])
    valid = pattern_mask(7, K)[None].expand(2, -1, -1)
    expected = torch.nn.functional.cross_entropy(logits[:, :, :10][valid], delay(codes[..., :7], CARD)[valid])
    torch.testing.assert_close(hybrid.autoregressive, expected.detach())


def test_objective_scores_neither_padding_nor_unmasked_positions():
    model = tiny_model()
    codes, condition = random_codes(2, 30), torch.randn(2, 3, 32)
    spans = torch.zeros(2, 30, dtype=torch.bool)
    spans[:, 3:12] = True  # frames 3..6 lie in the prefix: never part of the masked objective
    valid = torch.ones(2, 30, dtype=torch.bool)
    valid[1, 10:] = False  # padding after a short clip
    valid[0, 5] = False
    out = hybrid_loss(model, codes, condition, build("scheduler", "cosine"), HybridConfig(), prefix_frames=7,
                      stage=1, spans=spans, valid=valid)
    assert int(out.masked_count) == 5 + 3  # frames 7..11 of row 0, 7..9 of row 1
    assert int(out.autoregressive_count) == 2 * 7 * K - K  # every prefix code but row 0's frame 5
    weight = HybridConfig().ar_loss_weight
    torch.testing.assert_close(out.loss, (out.masked_sum + weight * out.autoregressive_sum) / (8 + weight * 52))
    torch.testing.assert_close(out.masked, out.masked_sum.detach() / 8)


def test_prefix_lengths_follow_the_recipe():
    generator = torch.Generator().manual_seed(0)
    config = HybridConfig(max_prefix_seconds=0.2, prefix_prob=0.5)
    lengths = [sample_prefix_frames(config, 50, 50.0, 3, generator) for _ in range(400)]
    assert 150 < lengths.count(0) < 250 and max(lengths) == 10 and min(n for n in lengths if n) == 1
    assert sample_prefix_frames(HybridConfig(prefix_prob=1.0, max_prefix_seconds=5), 12, 50.0, 3, generator) <= 9


def test_a_tiny_hybrid_trains_a_few_steps_and_generates(fakes):
    """Trained jointly on one clip, the model learns both its prefix and its masked part, then generates."""
    torch.manual_seed(0)
    model = tiny_model(segment=1.0)
    pipe = make_pipeline(recipe={"hybrid": {"prefix_seconds": 0.2, "top_k": 1, "max_prefix_seconds": 0.4,
                                            "prefix_prob": 1.0}}, model=model)
    model.train()
    scheduler, config = pipe.scheduler, pipe.recipe.hybrid
    codes = random_codes(2, 48, seed=3)
    condition = pipe.conditioner(["a clip", "another"]).embeddings.detach()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    first = last = None
    for step in range(30):
        out = hybrid_loss(model, codes, condition, scheduler, config, prefix_frames=10, generator=generator)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        first = first if first is not None else (float(out.masked), float(out.autoregressive))
        last = (float(out.masked), float(out.autoregressive))
    assert last[0] < first[0] and last[1] < 0.7 * first[1]

    model.eval()
    hybrid = HybridGenerator(pipe)
    result = hybrid.generate(["a clip", "another"], duration=0.96, seed=0)
    assert result.codes.shape == (2, K, 10 + 36) and result.prefix_frames == 10  # the rest cut to whole spans
    assert torch.equal(result.codes[..., :10], result.prefix)
    assert result.codes.min() >= 0 and result.codes.max() < CARD and result.audio.shape == (2, 1, 46 * 160)
    assert 0 < result.autoregressive_seconds < result.seconds


def test_generation_is_the_causal_prefix_then_the_parallel_part(fakes):
    pipe = make_pipeline(recipe={"hybrid": {"prefix_seconds": 0.2, "top_k": 1, "cfg_coef": 1.0}},
                         model=tiny_model(segment=1.0).eval())
    result = HybridGenerator(pipe).generate(["calm"], duration=0.96, seed=5)
    # The prefix is what the model decodes greedily with full forwards (no cache), column by column.
    condition = pipe.conditioner(["calm"]).embeddings
    block = torch.full((1, K, 1), CARD)
    delayed = []
    for c in range(10 + K - 1):
        logits = pipe.model(block, condition, 0, causal_prefix=block.shape[-1])[:, :, -1]  # [1, K, card]
        tokens = torch.where(pattern_mask(10, K)[:, c], logits.argmax(-1), torch.full((1, K), CARD))
        delayed.append(tokens)
        block = torch.cat([block, tokens[..., None]], dim=-1)
    expected = torch.stack(delayed, dim=-1)
    assert torch.equal(delay(result.prefix, CARD), expected)
    assert torch.equal(result.codes[..., :10], result.prefix)
    again = HybridGenerator(pipe).generate(["calm"], duration=0.96, seed=5)
    other = HybridGenerator(pipe).generate(["calm"], duration=0.96, seed=6)
    assert torch.equal(again.codes, result.codes) and not torch.equal(other.codes[..., 10:], result.codes[..., 10:])


def test_unguided_prefix_decoding_matches_session_rows(fakes):
    """Unconditional generation decodes the prefix without guidance rows."""
    pipe = make_pipeline(recipe={"hybrid": {"prefix_seconds": 0.1, "top_k": 1}}, model=tiny_model(segment=1.0).eval())
    result = HybridGenerator(pipe).generate(None, num_samples=2, duration=0.5, seed=0)
    condition = pipe.conditioner([None, None]).embeddings
    session = MagnetSession(pipe.model, condition, 5 + K - 1)
    expected = decode_prefix(session, 2, 5, K, CARD, HybridConfig(top_k=1), guided=False)
    assert torch.equal(result.prefix, expected)


def test_clear_errors(fakes):
    pipe = make_pipeline(recipe={"hybrid": {"prefix_seconds": 0.5}}, model=tiny_model(segment=1.0).eval())
    hybrid = HybridGenerator(pipe)
    with pytest.raises(UsageError, match="limited to the model's window"):
        hybrid.generate(["x"], duration=2.0)
    with pytest.raises(UsageError, match="must be shorter than the duration"):
        hybrid.generate(["x"], duration=0.4)
    with pytest.raises(UsageError, match="no whole span"):
        hybrid.generate(["x"], duration=0.52)
    with pytest.raises(UsageError, match="no hybrid section"):
        HybridGenerator.from_pipeline(make_pipeline())
