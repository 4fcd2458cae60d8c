"""MagnetTransformer against audiocraft's logits on the tiny fixture, and its own contracts."""

import pytest
import torch

from magnetkit.checkpoint import load_weights, read_audiocraft_checkpoint
from magnetkit.errors import UsageError
from magnetkit.model.config import ModelConfig
from magnetkit.model.transformer import MagnetTransformer, restricted_context_mask, sin_embedding

TOL = 1e-4


@pytest.fixture(scope="module")
def model(tiny_dir):
    checkpoint = read_audiocraft_checkpoint(tiny_dir)
    model = MagnetTransformer(checkpoint.model_config)
    load_weights(model, checkpoint.model_state, what="tiny transformer")
    return model.eval()


def assert_matches_reference(logits: torch.Tensor, reference: dict, name: str) -> None:
    """Compare with the compact reference: exact head, logsumexp over all, argmax."""
    head = torch.from_numpy(reference[f"{name}_head"])
    assert logits.shape[:-1] == head.shape[:-1] and logits.shape[-1] == 2048
    assert (logits[..., :256] - head).abs().max().item() < TOL
    lse = torch.logsumexp(logits.double(), dim=-1)
    assert (lse - torch.from_numpy(reference[f"{name}_lse"]).double()).abs().max().item() < TOL
    assert torch.equal(logits.argmax(-1), torch.from_numpy(reference[f"{name}_argmax"]).long())


@pytest.mark.parametrize("stage", [0, 1, 2, 3])
def test_logits_of_every_stage_match_audiocraft(model, reference, stage):
    codes = torch.from_numpy(reference[f"logits_input_stage{stage}"])
    condition = torch.from_numpy(reference["cond_description"])
    with torch.no_grad():
        logits = model(codes, condition, stage)
    assert_matches_reference(logits, reference, f"logits_stage{stage}")


def test_padded_condition_positions_take_attention_weight(model, reference):
    """audiocraft has no cross-attention padding mask: zero padding changes the logits."""
    codes = torch.from_numpy(reference["logits_input_stage1"])
    padded = torch.from_numpy(reference["pad_cond_description"])  # row 0: 3 tokens + 5 zero rows
    with torch.no_grad():
        logits = model(codes, padded, 1)
        unpadded_row0 = model(codes[:1], padded[:1, :3], 1)
    assert_matches_reference(logits, reference, "pad_logits_stage1")
    assert not torch.allclose(logits[:1], unpadded_row0, atol=1e-3)


def test_cross_attention_cache_and_stage_only_give_the_same_logits(model, reference):
    codes = torch.from_numpy(reference["logits_input_stage2"])
    condition = torch.from_numpy(reference["cond_description"])
    with torch.no_grad():
        full = model(codes, condition, 2)
        cache = model.cross_attention_cache(condition)
        cached = model(codes, None, 2, cross_cache=cache)
        only = model(codes, condition, 2, stage_only=True)
        cached_only = model(codes, condition, 2, stage_only=True, cross_cache=cache)
    assert torch.equal(cached, full)
    assert only.shape == (2, 1, 60, 2048)
    assert torch.equal(only, full[:, 2:3])
    assert torch.equal(cached_only, full[:, 2:3])


def test_stages_above_the_first_see_only_a_restricted_context(model, reference):
    """A change at frame 30 reaches at most layers * subcodes_context frames for stage > 0."""
    codes = torch.from_numpy(reference["logits_input_stage1"])
    changed = codes.clone()
    changed[:, 0, 30] = (changed[:, 0, 30] + 1) % 2048
    condition = torch.from_numpy(reference["cond_description"])
    reach = model.config.num_layers * model.config.subcodes_context  # 10 frames
    with torch.no_grad():
        for stage in (0, 1):
            moved = (model(codes, condition, stage) - model(changed, condition, stage)).abs().amax(dim=(0, 1, 3))
            far = torch.cat([moved[: 30 - reach], moved[30 + reach + 1:]])
            if stage == 0:
                assert (far > 0).all(), "stage 0 attends to every frame"
            else:
                assert (far == 0).all() and moved[30] > 0


def test_restricted_context_mask_is_the_band():
    mask = restricted_context_mask(9, 2)
    i, j = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    assert torch.equal(mask, (i - j).abs() <= 2)


def test_sin_embedding_is_cos_then_sin_with_audiocraft_periods():
    emb = sin_embedding(5, 8, 10_000.0)[0].double()  # [T, D]
    half = 4
    for t in range(5):
        for c in range(half):
            phase = t / 10_000.0 ** (c / (half - 1))
            assert emb[t, c].item() == pytest.approx(torch.cos(torch.tensor(phase)).item(), abs=1e-6)
            assert emb[t, half + c].item() == pytest.approx(torch.sin(torch.tensor(phase)).item(), abs=1e-6)


def test_mask_token_has_its_own_embedding_row(model):
    assert model.mask_id == 2048
    assert all(emb.weight.shape == (2049, 64) for emb in model.emb)


def test_any_length_runs_beyond_the_training_window():
    config = ModelConfig(dim=32, num_heads=2, num_layers=1, num_codebooks=2, cardinality=16, segment_duration=1.0)
    model = MagnetTransformer(config).eval()
    codes = torch.randint(0, 17, (1, 2, 73))  # 73 frames > 50 of the 1 s training window
    with torch.no_grad():
        logits = model(codes, torch.randn(1, 4, 32), 1)
    assert logits.shape == (1, 2, 73, 16) and torch.isfinite(logits).all()


def test_dropout_only_in_training():
    config = ModelConfig(dim=32, num_heads=2, num_layers=1, num_codebooks=2, cardinality=16, dropout=0.5)
    model = MagnetTransformer(config)
    codes, condition = torch.randint(0, 17, (1, 2, 12)), torch.randn(1, 3, 32)
    model.train()
    assert not torch.equal(model(codes, condition, 0), model(codes, condition, 0))
    model.eval()
    assert torch.equal(model(codes, condition, 0), model(codes, condition, 0))


def test_initialisation_follows_audiocraft_scales():
    config = ModelConfig(dim=64, num_heads=4, num_layers=2, num_codebooks=1, cardinality=256, bias_ff=True)
    model = MagnetTransformer(config)
    std = 1 / 64 ** 0.5
    assert model.emb[0].weight.abs().max() <= 3 * std + 1e-6
    assert model.layers[1].linear1.weight.abs().max() <= 3 * std / 2 + 1e-6  # depth 2: / sqrt(4)
    assert torch.count_nonzero(model.layers[0].linear1.bias) == 0


def test_bad_inputs_are_usage_errors(model, reference):
    codes = torch.from_numpy(reference["logits_input_stage0"])
    condition = torch.from_numpy(reference["cond_description"])
    with pytest.raises(UsageError, match="codes must be"):
        model(codes[:, :3], condition, 0)
    with pytest.raises(UsageError, match=r"codes must lie in \[0, 2048\]"):
        model(codes + 2048, condition, 0)
    with pytest.raises(UsageError, match="stage must be"):
        model(codes, condition, 4)
    with pytest.raises(UsageError, match="condition must be"):
        model(codes, condition[..., :32], 0)
    with pytest.raises(UsageError, match="condition"):
        model(codes, None, 0)
