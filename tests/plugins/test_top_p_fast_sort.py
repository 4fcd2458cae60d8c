"""The top-p sampler's fast CPU sort draws exactly what audiocraft's torch.sort-based sampler draws."""

import pytest
import torch
from magnetkit_samplers import TopPConfig, TopPSampler
from magnetkit_samplers.top_p import sort_descending


def audiocraft_top_p(probs: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    """audiocraft's ``utils.sample_top_p``, verbatim in its operations."""
    probs_sort, probs_idx = torch.sort(probs, dim=-1, descending=True)
    probs_sum = torch.cumsum(probs_sort, dim=-1)
    mask = probs_sum - probs_sort > p
    probs_sort *= (~mask).float()
    probs_sort.div_(probs_sort.sum(dim=-1, keepdim=True))
    flat = probs_sort.reshape(-1, probs_sort.shape[-1])
    picked = torch.multinomial(flat, num_samples=1, generator=generator).reshape(*probs_sort.shape[:-1], 1)
    return torch.gather(probs_idx, -1, picked)[..., 0]


@pytest.mark.parametrize("grid", [None, 0.5, 2.0])  # None: few ties; a coarse grid: ties everywhere
@pytest.mark.parametrize("step", [0, 5, 9])
def test_tokens_equal_audiocraft_even_among_tied_probabilities(grid, step):
    logits = torch.randn(3, 200, 256, generator=torch.Generator().manual_seed(step)) * 3
    if grid is not None:
        logits = (logits / grid).round() * grid
    sampler = TopPSampler(TopPConfig(top_p=0.9, temperature=3.0, audiocraft_stream=True))
    tokens, confidences = sampler(logits, step, 10, generator=torch.Generator().manual_seed(7))
    probs = torch.softmax(logits / sampler.temperature_at(step, 10), dim=-1)
    assert torch.equal(tokens, audiocraft_top_p(probs, 0.9, torch.Generator().manual_seed(7)))
    assert torch.equal(confidences, torch.gather(probs, -1, tokens[..., None])[..., 0])


def test_the_fast_sort_has_torchs_values_and_says_its_tie_order_may_differ():
    probs = torch.softmax((torch.randn(50, 128) * 4).round(), dim=-1)  # many ties
    values, indices, exact = sort_descending(probs)
    expected = torch.sort(probs, dim=-1, descending=True)
    assert not exact and torch.equal(values, expected.values)
    assert torch.equal(torch.gather(probs, -1, indices), values)
    assert not torch.equal(indices, expected.indices)  # so the tie settling above is exercised
