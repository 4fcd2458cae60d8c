"""Rotary positions (``model.positional_embedding: rope``): audiocraft's RoPE arithmetic, relative by design."""

import pytest
import torch

from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import (
    Attention,
    MagnetTransformer,
    restricted_context_mask,
    rotary_tables,
    rotate,
    sin_embedding,
)


def complex_rotation(x: torch.Tensor, max_period: float) -> torch.Tensor:
    """RoPE written as audiocraft writes it: channel pairs as complex numbers times e^(i t f)."""
    frames, head_dim = x.shape[-2], x.shape[-1]
    frequencies = 1.0 / (max_period ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    angles = torch.outer(torch.arange(frames, dtype=torch.float64), frequencies)
    turn = torch.polar(torch.ones_like(angles), angles)  # [T, hd/2]
    pairs = torch.view_as_complex(x.double().reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real(pairs * turn).flatten(-2)


def test_rotation_is_the_complex_product_of_audiocraft():
    x = torch.randn(2, 3, 40, 16)
    ours = rotate(x, rotary_tables(40, 16, 10_000.0))
    torch.testing.assert_close(ours.double(), complex_rotation(x, 10_000.0), atol=1e-5, rtol=1e-5)
    assert ours.dtype == x.dtype
    # Frame 0 is not turned at all; the norm of every pair is kept.
    torch.testing.assert_close(ours[..., 0, :], x[..., 0, :])
    torch.testing.assert_close(ours.unflatten(-1, (-1, 2)).norm(dim=-1), x.unflatten(-1, (-1, 2)).norm(dim=-1))


def test_scores_depend_only_on_the_distance_between_frames():
    q, k = torch.randn(16), torch.randn(16)
    tables = rotary_tables(60, 16, 10_000.0)
    rows = torch.stack([q, k]).expand(60, 2, 16).transpose(0, 1)  # the same vectors at every frame
    turned_q, turned_k = rotate(rows[0], tables), rotate(rows[1], tables)
    score = lambda i, j: float(turned_q[i] @ turned_k[j])  # noqa: E731
    for i, j, shift in [(3, 10, 20), (30, 12, 17), (5, 5, 40)]:
        assert score(i + shift, j + shift) == pytest.approx(score(i, j), abs=1e-4)
    assert score(3, 10) != pytest.approx(score(3, 11), abs=1e-4)


def test_blocked_attention_matches_the_masked_attention_with_rotary_positions():
    torch.manual_seed(0)
    attention = Attention(64, 4, bias=False, dropout=0.0).eval()
    x, rotary = torch.randn(2, 150, 64), rotary_tables(150, 16, 10_000.0)
    with torch.no_grad():
        masked = attention.self_attention(x, restricted_context_mask(150, 5), rotary)
        blocked = attention.blocked_self_attention(x, 5, rotary=rotary)
    torch.testing.assert_close(blocked, masked, atol=1e-5, rtol=1e-5)


def test_a_rope_model_is_shift_equivariant_and_sin_is_not():
    """With rotary positions only, a sequence's logits depend on where frames are relative to each other."""
    condition = torch.randn(1, 3, 32)

    def window_logits(positions: str) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(0)
        config = ModelConfig(dim=32, num_heads=2, num_layers=2, num_codebooks=2, cardinality=16,
                             subcodes_context=3, positional_embedding=positions)
        model = MagnetTransformer(config).eval()
        codes = torch.randint(0, 17, (1, 2, 40), generator=torch.Generator().manual_seed(1))
        # Stage 1 sees +-3 frames per layer: frames 10..29 of the sequence see only frames 4..35,
        # so they do not see the sequence's ends; the same frames moved 4 later must give the same logits.
        shifted = torch.cat([codes[..., -4:], codes[..., :-4]], dim=-1)
        with torch.no_grad():
            return model(codes, condition, 1)[:, :, 10:30], model(shifted, condition, 1)[:, :, 14:34]

    torch.testing.assert_close(*window_logits("rope"), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(*window_logits("sin"), atol=1e-3)


def test_rotary_positions_need_an_even_head_width():
    with pytest.raises(ValueError, match="even head width"):
        ModelConfig(dim=30, num_heads=2, positional_embedding="rope")
    ModelConfig(dim=30, num_heads=2)  # sinusoids do not care


@pytest.mark.parametrize("positions, scale", [("sin", 1.0), ("sin", 0.1), ("sin_rope", 0.25), ("rope", 0.1)])
def test_positional_scale_multiplies_the_sinusoids_added_to_the_input(positions, scale):
    config = ModelConfig(dim=32, num_heads=2, num_layers=1, num_codebooks=2, cardinality=16,
                         positional_embedding=positions, positional_scale=scale)
    model = MagnetTransformer(config).eval()
    seen = []
    model.layers[0].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    codes = torch.randint(0, 16, (1, 2, 12), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(codes, torch.randn(1, 3, 32), 0)
    tokens = model.emb[0](codes[:, 0]) + model.emb[1](codes[:, 1])
    added = scale * sin_embedding(12, 32, config.max_period) if positions != "rope" else 0  # rope adds nothing
    torch.testing.assert_close(seen[0], tokens + added, atol=0, rtol=0)
