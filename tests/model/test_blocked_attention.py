"""Restricted-context attention computed block by block equals the [T, T] band mask."""

import pytest
import torch

from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import (
    ATTENTION_BLOCK,
    Attention,
    MagnetTransformer,
    restricted_context_blocks,
    restricted_context_mask,
)


def blocks_to_full(blocks: torch.Tensor, num_frames: int, context: int, block: int) -> torch.Tensor:
    """Scatter the per-block windows back into a [T, T] mask (padding rows and keys dropped)."""
    full = torch.zeros(num_frames, num_frames, dtype=torch.bool)
    for n in range(blocks.shape[0]):
        for r in range(block):
            i = n * block + r
            for w in range(blocks.shape[2]):
                j = n * block - context + w
                if i < num_frames and 0 <= j < num_frames and blocks[n, r, w]:
                    full[i, j] = True
    return full


@pytest.mark.parametrize("frames, context, block", [(100, 5, 32), (64, 5, 32), (13, 2, 4), (7, 0, 3)])
def test_blocks_cover_exactly_the_band(frames, context, block):
    blocks = restricted_context_blocks(frames, context, block)
    assert blocks.shape == (-(-frames // block), block, block + 2 * context)
    assert torch.equal(blocks_to_full(blocks, frames, context, block), restricted_context_mask(frames, context))
    assert blocks.any(-1).all(), "no query row may be fully masked (it would give NaN)"


@pytest.mark.parametrize("frames, context", [(150, 5), (97, 5), (200, 3), (80, 0)])
def test_blocked_attention_matches_the_masked_attention(frames, context):
    torch.manual_seed(0)
    attention = Attention(64, 4, bias=False, dropout=0.0).eval()
    x = torch.randn(3, frames, 64)
    with torch.no_grad():
        masked = attention.self_attention(x, restricted_context_mask(frames, context))
        blocked = attention.blocked_self_attention(x, context)
    assert blocked.shape == masked.shape
    torch.testing.assert_close(blocked, masked, atol=1e-5, rtol=1e-5)


def test_the_model_uses_blocks_only_where_they_save_work():
    model = MagnetTransformer(ModelConfig(dim=32, num_heads=2, num_layers=1, cardinality=16))
    context = model.config.subcodes_context
    long, short = ATTENTION_BLOCK + 2 * context + 1, ATTENTION_BLOCK + 2 * context
    assert model._blocked_context(1, long, 0) == context
    assert model._blocked_context(0, long, 0) is None  # stage 0 attends everywhere
    assert model._blocked_context(1, short, 0) is None  # one block's window covers every frame
    assert model._blocked_context(1, long, 4) is None  # a causal prefix needs the full mask


def test_blocked_and_masked_forwards_agree_for_every_stage():
    torch.manual_seed(0)
    model = MagnetTransformer(ModelConfig(dim=32, num_heads=2, num_layers=2, cardinality=16)).eval()
    codes = torch.randint(0, 17, (2, 4, 120))
    condition = torch.randn(2, 5, 32)
    with torch.no_grad():
        for stage in range(4):
            blocked = model(codes, condition, stage, blocked_attention=True)
            masked = model(codes, condition, stage, blocked_attention=False)
            torch.testing.assert_close(blocked, masked, atol=1e-5, rtol=1e-5)
