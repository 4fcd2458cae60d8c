"""FAD, KAD, KL and the CLAP cosine: closed forms, independent computations, degenerate sets."""

import numpy as np
import pytest
import torch

from magnetkit.errors import UsageError
from magnetkit.metrics import (
    clip_frechet_to_reference,
    cosine_scores,
    frechet_distance,
    frechet_from_stats,
    gaussian_stats,
    kernel_audio_distance,
    kl_divergence,
    median_bandwidth,
)


def _fad_by_eigvals(a: np.ndarray, b: np.ndarray) -> float:
    """FAD through the eigenvalues of the non-symmetric product S_a S_b (another route to the trace)."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    eig = np.linalg.eigvals(s_a @ s_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * np.sqrt(np.clip(eig.real, 0, None)).sum())


def test_fad_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((200, 16))
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-9)


def test_fad_closed_form_for_diagonal_gaussians():
    mu_a, mu_b = np.zeros(3), np.array([1.0, 0, 2])
    s_a, s_b = np.diag([1.0, 4, 9]), np.diag([4.0, 4, 1])
    expected = 1 + 4 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert frechet_from_stats(mu_a, s_a, mu_b, s_b) == pytest.approx(expected, rel=1e-12)


def test_fad_matches_an_independent_computation_with_ddof_1():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((300, 8)), 0.5 + 1.5 * rng.standard_normal((250, 8))
    assert frechet_distance(a, b) == pytest.approx(_fad_by_eigvals(a, b), rel=1e-8)
    mu, sigma = gaussian_stats(a)
    assert np.allclose(sigma, np.cov(a, rowvar=False, ddof=1))


def test_fad_grows_with_the_shift_and_handles_fewer_vectors_than_dimensions():
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((40, 64))  # n < D: singular covariance
    near, far = rng.standard_normal((40, 64)), 1.0 + rng.standard_normal((40, 64))
    assert np.isfinite(frechet_distance(ref, near))
    assert frechet_distance(ref, near) < frechet_distance(ref, far)


def test_too_small_or_mismatched_sets_are_one_clear_error():
    with pytest.raises(UsageError, match="at least 2"):
        frechet_distance(np.zeros((1, 4)), np.zeros((5, 4)))
    with pytest.raises(UsageError, match="width"):
        kernel_audio_distance(np.ones((5, 4)), np.ones((5, 3)))


def test_kad_is_near_zero_for_one_distribution_and_positive_for_another():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((300, 8))
    same, other = rng.standard_normal((300, 8)), 0.7 + rng.standard_normal((300, 8))
    assert abs(kernel_audio_distance(ref, same)) < 0.2 * kernel_audio_distance(ref, other)
    assert kernel_audio_distance(ref, other) > 0


def test_kad_matches_a_direct_unbiased_mmd():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((30, 3)), 0.3 + rng.standard_normal((20, 3))
    sigma = 1.7
    k = lambda a, b: np.exp(-((a[:, None] - b[None]) ** 2).sum(-1) / (2 * sigma ** 2))  # noqa: E731
    kxx, kyy = k(x, x), k(y, y)
    mmd = ((kxx.sum() - np.trace(kxx)) / (30 * 29) + (kyy.sum() - np.trace(kyy)) / (20 * 19) - 2 * k(x, y).mean())
    assert kernel_audio_distance(x, y, bandwidth=sigma) == pytest.approx(100 * mmd, rel=1e-9)
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))[np.triu_indices(30, 1)]
    assert median_bandwidth(x) == pytest.approx(np.median(d), rel=1e-9)


def test_kl_is_audiocraft_kld():
    rng = np.random.default_rng(5)
    p = torch.softmax(torch.from_numpy(rng.standard_normal((4, 10))), -1)
    q = torch.softmax(torch.from_numpy(rng.standard_normal((4, 10))), -1)
    # audiocraft: kl_divergence(pred_probs=generated, target_probs=reference)
    expected = torch.nn.functional.kl_div((q + 1e-6).log(), p, reduction="none").sum(-1)
    assert np.allclose(kl_divergence(p.numpy(), q.numpy()), expected.numpy(), rtol=1e-10)
    assert np.allclose(kl_divergence(p.numpy(), p.numpy()), 0, atol=1e-4)


def test_clip_distance_and_cosine():
    rng = np.random.default_rng(6)
    ref = rng.standard_normal((100, 4))
    near, far = rng.standard_normal((10, 4)), 3 + rng.standard_normal((10, 4))
    d_near, d_far, d_one = clip_frechet_to_reference([near, far, far[:1]], ref)
    assert d_near < d_far and d_one > d_near
    # the Gram-matrix shortcut equals the full D x D Fréchet distance
    assert d_far == pytest.approx(frechet_from_stats(*gaussian_stats(ref), *gaussian_stats(far)), rel=1e-7)
    assert np.allclose(cosine_scores(np.array([[1.0, 0], [1, 1]]), np.array([[2.0, 0], [-1, -1]])), [1, -1])
