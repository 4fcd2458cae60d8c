"""The default (fast) draws of top-p and top-k: audiocraft's distribution, without its sort and stream.

Two draws: the sorting draw (`draw_ranked`, top-k everywhere and top-p off the CPU) and top-p's
CPU loop (`magnetkit_samplers.kernels.nucleus_draw`: draw from the softmax, keep nucleus tokens).
"""

import pytest
import torch
from magnetkit_samplers import TopKConfig, TopKSampler, TopPConfig, TopPSampler
from magnetkit_samplers.base import draw_ranked, ranked_cumulative
from magnetkit_samplers.kernels import ROUNDS, nucleus_draw


def reference_nucleus(probs: torch.Tensor, p: float) -> torch.Tensor:
    """audiocraft's kept tokens as a [N, card] mask (torch.sort, cumulative mass above each rank)."""
    ranked, order = torch.sort(probs, dim=-1, descending=True)
    kept_ranked = ~(torch.cumsum(ranked, dim=-1) - ranked > p)
    return torch.zeros_like(kept_ranked).scatter(-1, order, kept_ranked)


def draw(probs: torch.Tensor, first: torch.Tensor, seed: int = 0) -> torch.Tensor:
    ascending, cumulative = ranked_cumulative(probs)
    return draw_ranked(probs, ascending, cumulative, first, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("temperature", [0.3, 1.0, 3.0])
@pytest.mark.parametrize("top_p", [0.1, 0.5, 0.9, 1.0])
def test_the_nucleus_is_audiocrafts(temperature, top_p):
    logits = 4 * torch.randn(600, 512, generator=torch.Generator().manual_seed(0))
    probs = torch.softmax(logits / temperature, dim=-1)
    _, cumulative = ranked_cumulative(probs)
    kept = probs.shape[-1] - TopPSampler(TopPConfig(top_p=top_p)).first_kept(cumulative)[:, 0]
    expected = reference_nucleus(probs, top_p)
    # The count differs only where float rounding of a cumulative sum meets p: at tokens of
    # negligible probability (their mass above is p to within rounding), so the kept mass agrees.
    ranked = torch.sort(probs, dim=-1, descending=True).values
    kept_mass = (ranked * (torch.arange(512) < kept[:, None])).sum(-1)
    assert torch.allclose(kept_mass, (probs * expected).sum(-1), rtol=0, atol=1e-5)
    assert (kept != expected.sum(-1)).float().mean() < (0.5 if top_p == 1 else 0.05)


def test_draws_follow_the_kept_renormalised_probabilities():
    probs = torch.tensor([0.05, 0.3, 0.1, 0.25, 0.02, 0.28]).expand(200_000, 6).contiguous()
    tokens = draw(probs, torch.full((200_000, 1), 2), seed=3)  # ascending ranks 2.. : 0.1 and above
    counts = torch.bincount(tokens, minlength=6).double()
    expected = torch.tensor([0, 0.3, 0.1, 0.25, 0, 0.28], dtype=torch.float64) / 0.93 * 200_000
    assert counts[0] == counts[4] == 0
    sigma = (expected * (1 - expected / 200_000)).sqrt()
    kept = expected > 0
    assert ((counts[kept] - expected[kept]).abs() < 5 * sigma[kept]).all(), (counts, expected)


def test_tied_tokens_share_their_ranks_evenly_and_a_tie_at_the_border_keeps_the_count():
    # Ascending: 0.1, 0.2, 0.2, 0.2, 0.3. From rank 2 on, two of the three tied 0.2s stay:
    # 0.3 is drawn with 0.3/0.7, and the tied ranks (0.2/0.7 each) go to tokens 1 and 3.
    probs = torch.tensor([[0.3, 0.2, 0.1, 0.2, 0.2]]).expand(100_000, 5).contiguous()
    tokens = draw(probs, torch.full((100_000, 1), 2), seed=1)
    counts = torch.bincount(tokens, minlength=5).double() / 100_000
    assert counts[2] == counts[4] == 0
    assert torch.allclose(counts, torch.tensor([3 / 7, 2 / 7, 0, 2 / 7, 0], dtype=torch.float64), atol=0.01)
    # All three tied and all kept: each 0.2 token is drawn equally often.
    counts = torch.bincount(draw(probs, torch.full((100_000, 1), 1), seed=2), minlength=5).double() / 100_000
    assert torch.allclose(counts, torch.tensor([0.3, 0.2, 0, 0.2, 0.2], dtype=torch.float64) / 0.9, atol=0.01)


def test_the_tie_path_without_host_syncs_draws_the_same(monkeypatch):
    # On a GPU every row takes the tie path (no data-dependent row selection): same tokens.
    probs = torch.softmax((3 * torch.randn(400, 32, generator=torch.Generator().manual_seed(2))).round(), dim=-1)
    first = torch.full((400, 1), 20)
    on_cpu = draw(probs, first, seed=5)
    monkeypatch.setattr("magnetkit_samplers.base._host_syncs_are_free", lambda device: False)
    assert torch.equal(draw(probs, first, seed=5), on_cpu)


def test_bfloat16_probabilities_take_the_torch_path():
    probs = torch.softmax(torch.randn(50, 64, generator=torch.Generator().manual_seed(3)), dim=-1)
    tokens = draw(probs.bfloat16(), torch.full((50, 1), 60))
    assert (probs.bfloat16().gather(-1, tokens[:, None]) >= probs.bfloat16().sort(-1).values[:, 60:61]).all()


def test_the_top_rank_alone_is_the_argmax_anywhere():
    probs = torch.softmax(torch.randn(1000, 64, generator=torch.Generator().manual_seed(1)), dim=-1)
    assert torch.equal(draw(probs, torch.full((1000, 1), 63)), probs.argmax(-1))


def test_fast_top_p_keeps_the_full_softmax_confidences_and_the_seed():
    logits = 3 * torch.randn(2, 300, 2048, generator=torch.Generator().manual_seed(4))
    sampler = TopPSampler(TopPConfig())
    tokens, confidences = sampler(logits, 1, 10, torch.Generator().manual_seed(9))
    again, _ = sampler(logits, 1, 10, torch.Generator().manual_seed(9))
    probs = torch.softmax(logits / sampler.temperature_at(1, 10), dim=-1)
    assert torch.equal(tokens, again)
    assert torch.equal(confidences, torch.gather(probs, -1, tokens[..., None])[..., 0])
    assert torch.gather(reference_nucleus(probs.reshape(-1, 2048), 0.9), -1, tokens.reshape(-1, 1)).all()


def test_fast_top_k_confidences_are_the_truncated_distribution_like_audiocraft():
    logits = 3 * torch.randn(2, 100, 256, generator=torch.Generator().manual_seed(5))
    sampler = TopKSampler(TopKConfig(top_k=20))
    tokens, confidences = sampler(logits, 0, 4, torch.Generator().manual_seed(1))
    probs = torch.softmax(logits / sampler.temperature_at(0, 4), dim=-1)
    top = torch.topk(probs, 20, dim=-1)
    assert (tokens[..., None] == top.indices).any(-1).all()
    kept = probs * (probs >= top.values[..., -1:]).float()
    kept = kept / kept.sum(dim=-1, keepdim=True)
    assert torch.allclose(confidences, torch.gather(kept, -1, tokens[..., None])[..., 0], rtol=1e-5, atol=0)


def test_many_positions_are_sampled_in_chunks_with_the_same_results():
    from magnetkit_samplers import GreedyConfig, GreedySampler
    from magnetkit.sampling import CHUNK_ENTRIES

    logits = 3 * torch.randn(2, 700, 2048, generator=torch.Generator().manual_seed(6))
    assert logits.shape[0] * logits.shape[1] > CHUNK_ENTRIES // 2048  # several chunks
    sampler = GreedySampler(GreedyConfig())
    tokens, confidences = sampler(logits, 0, 4)
    probs = torch.softmax(logits / sampler.temperature_at(0, 4), dim=-1)
    assert torch.equal(tokens, logits.argmax(-1))
    assert torch.equal(confidences, torch.gather(probs, -1, tokens[..., None])[..., 0])
    tokens, confidences = TopPSampler(TopPConfig())(logits, 0, 4, torch.Generator().manual_seed(0))
    assert torch.gather(reference_nucleus(probs.reshape(-1, 2048), 0.9), -1, tokens.reshape(-1, 1)).all()
    assert torch.equal(confidences, torch.gather(probs, -1, tokens[..., None])[..., 0])


# ----------------------------------------------------------------------- top-p's CPU loop
def nucleus_frequencies(probs: torch.Tensor, top_p: float, seed: int) -> tuple[torch.Tensor, float]:
    """(how often each token is drawn, the share of rows drawn) over the rows of ``probs``."""
    tokens, drawn = nucleus_draw(probs, top_p, torch.Generator().manual_seed(seed))
    counts = torch.bincount(tokens[drawn], minlength=probs.shape[-1]).double()
    return counts / drawn.sum(), drawn.double().mean().item()


@pytest.mark.parametrize("top_p", [0.3, 0.9, 1.0])
def test_the_loop_draws_the_renormalised_nucleus(top_p):
    base = torch.softmax(1.5 * torch.randn(40, generator=torch.Generator().manual_seed(0)), dim=-1)
    kept = reference_nucleus(base[None], top_p)[0]
    expected = torch.where(kept, base, 0).double()
    expected /= expected.sum()
    frequencies, drawn = nucleus_frequencies(base.expand(300_000, 40).contiguous(), top_p, seed=1)
    sigma = (expected * (1 - expected) / (drawn * 300_000)).sqrt()
    assert (frequencies[~kept] == 0).all()
    assert ((frequencies[kept] - expected[kept]).abs() < 5 * sigma[kept]).all(), (frequencies, expected)
    # A row is drawn unless all its candidates miss the nucleus, which holds >= top_p of the mass.
    assert drawn >= 1 - (1 - top_p) ** ROUNDS - 0.01


def test_the_loop_keeps_the_first_tokens_of_a_tie_cut_by_the_border():
    # Ranked (stable): 0.3 (token 0), then the 0.2s as tokens 1, 3, 4, then 0.1. At p = 0.6 the mass
    # above token 4 is 0.7: tokens 0, 1 and 3 stay, as in the sorting draw and audiocraft.
    probs = torch.tensor([[0.3, 0.2, 0.1, 0.2, 0.2]], dtype=torch.float64).expand(200_000, 5).contiguous()
    frequencies, _ = nucleus_frequencies(probs, 0.6, seed=2)
    assert torch.equal(reference_nucleus(probs[:1], 0.6)[0], torch.tensor([True, True, False, True, False]))
    assert torch.allclose(frequencies, torch.tensor([3 / 7, 2 / 7, 0, 2 / 7, 0], dtype=torch.float64), atol=0.005)


def test_the_loop_never_draws_a_zero_and_handles_any_vocabulary_size():
    # A cold softmax: most entries are exactly 0; 100 entries is one full block and a partial one.
    logits = 100 * torch.randn(2000, 100, generator=torch.Generator().manual_seed(3))
    probs = torch.softmax(logits, dim=-1)
    assert (probs == 0).float().mean() > 0.5
    tokens, drawn = nucleus_draw(probs, 0.9, torch.Generator().manual_seed(4))
    assert drawn.all()
    assert torch.gather(reference_nucleus(probs, 0.9), -1, tokens[:, None]).all()
    assert (torch.gather(probs, -1, tokens[:, None]) > 0).all()


def test_rows_the_loop_leaves_undrawn_take_the_sorting_draw():
    # A flat softmax and a small nucleus: a candidate is kept with probability ~0.05, so ~80% of
    # the rows stay undrawn after 4 candidates.
    logits = 0.1 * torch.randn(1, 500, 2048, generator=torch.Generator().manual_seed(5))
    _, drawn = nucleus_draw(torch.softmax(logits[0], dim=-1), 0.05, torch.Generator().manual_seed(6))
    assert 0.1 < drawn.float().mean() < 0.3
    sampler = TopPSampler(TopPConfig(top_p=0.05, temperature=1.0, anneal=False))
    tokens, _ = sampler(logits, 0, 1, torch.Generator().manual_seed(6))
    nucleus = reference_nucleus(torch.softmax(logits[0], dim=-1), 0.05)
    assert torch.gather(nucleus, -1, tokens[0, :, None]).all()


def test_the_cpu_kernel_switch_selects_the_draw():
    logits = 3 * torch.randn(1, 200, 2048, generator=torch.Generator().manual_seed(7))
    probs = torch.softmax(logits / 3.0, dim=-1)[0]
    loop, _ = TopPSampler(TopPConfig(anneal=False))(logits, 0, 1, torch.Generator().manual_seed(8))
    sorting, _ = TopPSampler(TopPConfig(anneal=False, cpu_kernel=False))(logits, 0, 1, torch.Generator().manual_seed(8))
    tokens, drawn = nucleus_draw(probs, 0.9, torch.Generator().manual_seed(8))
    assert drawn.all() and torch.equal(loop[0], tokens)
    assert torch.equal(sorting[0], draw(probs, TopPSampler(TopPConfig()).first_kept(ranked_cumulative(probs)[1]), 8))
    assert not torch.equal(loop, sorting)  # the same distribution, another random stream
