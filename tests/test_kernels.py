"""The numba loops of `magnetkit.kernels` give exactly the values of the torch expressions they replace."""

import pytest
import torch

from magnetkit import kernels
from magnetkit.engine import guide, guided_at


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("coefficient", [3.0, 10.0, 1.0, 0.37, 7.1])
def test_select_guided_is_index_select_then_guide_bit_for_bit(dtype, coefficient):
    logits = 5 * torch.randn(2, 300, 2048, generator=torch.Generator().manual_seed(0), dtype=dtype)
    index = torch.tensor([0, 1, 7, 150, 151, 299])
    expected = guide(logits.index_select(1, index), 1, coefficient)
    mixed = kernels.select_guided(logits, index, coefficient)
    assert mixed.dtype == dtype and mixed.shape == (1, 6, 2048)
    assert torch.equal(mixed, expected)


def test_guided_at_takes_the_loop_on_cpu_and_torch_otherwise(monkeypatch):
    logits = torch.randn(2, 50, 64, generator=torch.Generator().manual_seed(1))
    index = torch.arange(0, 50, 3)
    calls = []
    loop = kernels.select_guided
    monkeypatch.setattr(kernels, "select_guided", lambda *args: calls.append(1) or loop(*args))
    with_loop = guided_at(logits, index, 3.0)
    without = guided_at(logits, index, 3.0, cpu_kernel=False)
    assert calls == [1] and torch.equal(with_loop, without)
    # Nothing to mix: the conditional rows at those positions, no loop.
    assert torch.equal(guided_at(logits[:1], index, None), logits[:1, index]) and calls == [1]
    # Half precision is not the loop's: torch computes it.
    assert torch.equal(guided_at(logits.bfloat16(), index, 3.0), guide(logits.bfloat16()[:, index], 1, 3.0))
    assert calls == [1]
