"""Distribution and pairing metrics over embedding vectors: FAD, KAD, CLAP score, KL.

Pure numpy, float64. Each function takes ``[n, D]`` arrays (one row per vector) and raises
`UsageError` when a set is too small for the statistic.
"""

from __future__ import annotations

import numpy as np

from magnetkit.errors import UsageError

KAD_SCALE = 100.0  # kadtk (the KAD authors' toolkit) reports MMD^2 x 100
KAD_MAX_VECTORS = 5000  # KAD is O(n^2): larger sets are subsampled (seeded) to this many vectors
KL_EPSILON = 1e-6  # audiocraft's `kl_divergence` adds this to the probabilities before the log


def _as_set(x: np.ndarray, what: str, minimum: int = 2) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise UsageError(f"{what} embeddings must be [n, D], got shape {x.shape}")
    if x.shape[0] < minimum:
        raise UsageError(f"{what} set has {x.shape[0]} vector(s): at least {minimum} are needed "
                         f"for a covariance (add clips, or use a per-frame embedder)")
    if not np.isfinite(x).all():
        raise UsageError(f"{what} embeddings contain NaN or infinite values")
    return x


def gaussian_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (ddof=1, float64) of ``[n, D]`` vectors (n >= 2)."""
    x = _as_set(x, "the")
    return x.mean(axis=0), np.cov(x, rowvar=False, ddof=1).reshape(x.shape[1], x.shape[1])


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a covariance; tiny negative eigenvalues (round-off) become 0."""
    values, vectors = np.linalg.eigh((sigma + sigma.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray, sqrt_a: np.ndarray | None = None) -> float:
    """``Tr((S_a S_b)^(1/2))`` without a non-symmetric matrix square root.

    ``S_a S_b`` is similar to the PSD matrix ``S_a^(1/2) S_b S_a^(1/2)``, so the trace of its
    square root is the sum of the square roots of that matrix's eigenvalues: exact, and stable
    for the singular covariances of sets smaller than D (where ``scipy.linalg.sqrtm`` returns
    complex noise).
    """
    root = _psd_sqrt(sigma_a) if sqrt_a is None else sqrt_a
    middle = root @ sigma_b @ root
    values = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(values, 0, None)).sum())


def frechet_from_stats(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray,
                       sqrt_a: np.ndarray | None = None) -> float:
    """``||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))`` (Heusel et al. 2017; Kilgour et al. 2019)."""
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt_product(sigma_a, sigma_b, sqrt_a)
    return float(max(value, 0.0))  # round-off can make a set's distance to itself -1e-12


def frechet_distance(reference: np.ndarray, generated: np.ndarray) -> float:
    """FAD: the Fréchet distance between Gaussians fitted (ddof=1, float64) to two sets of vectors.

    Args:
        reference: ``[n_r, D]`` vectors, n_r >= 2.
        generated: ``[n_g, D]`` vectors, n_g >= 2.

    Returns:
        The distance (>= 0; 0 for identical sets).

    Raises:
        UsageError: a set with fewer than 2 vectors, mismatched widths or non-finite values.
    """
    ref, gen = _as_set(reference, "reference"), _as_set(generated, "generated")
    _same_width(ref, gen)
    return frechet_from_stats(*gaussian_stats(ref), *gaussian_stats(gen))


def _same_width(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape[1] != b.shape[1]:
        raise UsageError(f"reference vectors have width {a.shape[1]} but generated vectors {b.shape[1]}")


def _subsample(x: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if x.shape[0] <= limit:
        return x
    index = np.random.default_rng(seed).choice(x.shape[0], size=limit, replace=False)
    return x[np.sort(index)]


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.clip(d, 0, None)


def median_bandwidth(reference: np.ndarray) -> float:
    """The median pairwise Euclidean distance between distinct reference vectors (KAD's rule)."""
    ref = _as_set(reference, "reference")
    d = _sq_dists(ref, ref)[np.triu_indices(ref.shape[0], k=1)]
    value = float(np.sqrt(np.median(d)))
    return value if value > 0 else 1.0  # all reference vectors equal: any positive width works


def kernel_audio_distance(reference: np.ndarray, generated: np.ndarray, *, bandwidth: float | None = None,
                          max_vectors: int = KAD_MAX_VECTORS, seed: int = 0) -> float:
    """KAD (Chung et al. 2025): the unbiased MMD^2 between two sets, Gaussian kernel, times `KAD_SCALE` (100).

    ``k(x, y) = exp(-||x - y||^2 / (2 sigma^2))``; the unbiased estimate drops the diagonal of
    each within-set kernel matrix (Gretton et al. 2012, Eq. 3), so it can be slightly negative.

    Args:
        reference: ``[n_r, D]`` vectors.
        generated: ``[n_g, D]`` vectors.
        bandwidth: sigma; None = the median pairwise distance within the reference set.
        max_vectors: sets larger than this are subsampled without replacement (seeded).
        seed: seed of that subsampling.

    Returns:
        ``100 * MMD^2_u``.

    Raises:
        UsageError: a set with fewer than 2 vectors or mismatched widths.
    """
    ref = _subsample(_as_set(reference, "reference"), max_vectors, seed)
    gen = _subsample(_as_set(generated, "generated"), max_vectors, seed + 1)
    _same_width(ref, gen)
    sigma = median_bandwidth(ref) if bandwidth is None else float(bandwidth)
    gamma = 1.0 / (2 * sigma * sigma)
    m, n = ref.shape[0], gen.shape[0]
    k_rr = np.exp(-gamma * _sq_dists(ref, ref))
    k_gg = np.exp(-gamma * _sq_dists(gen, gen))
    k_rg = np.exp(-gamma * _sq_dists(ref, gen))
    mmd = ((k_rr.sum() - np.trace(k_rr)) / (m * (m - 1)) + (k_gg.sum() - np.trace(k_gg)) / (n * (n - 1))
           - 2 * k_rg.mean())
    return float(KAD_SCALE * mmd)


def clip_frechet_to_reference(clips: list[np.ndarray], reference: np.ndarray) -> list[float]:
    """Each clip's Fréchet distance to the reference Gaussian (a one-vector clip has covariance 0).

    A clip has few vectors (n < D), so ``Tr((S_r S_c)^(1/2))`` comes from the n x n Gram matrix
    of its centred vectors mapped by ``S_r^(1/2)``: the same non-zero eigenvalues, at a
    fraction of the cost of a D x D decomposition per clip.
    """
    mu_r, sigma_r = gaussian_stats(reference)
    root = _psd_sqrt(sigma_r)
    trace_r = float(np.trace(sigma_r))
    out = []
    for clip in clips:
        clip = np.asarray(clip, dtype=np.float64)
        diff = clip.mean(axis=0) - mu_r
        if clip.shape[0] < 2:
            out.append(float(diff @ diff + trace_r))
            continue
        centred = (clip - clip.mean(axis=0)) / np.sqrt(clip.shape[0] - 1)  # S_c = centred^T centred
        mapped = centred @ root
        tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(mapped @ mapped.T), 0, None)).sum()
        out.append(float(max(diff @ diff + trace_r + (centred ** 2).sum() - 2 * tr_sqrt, 0.0)))
    return out


def cosine_scores(audio: np.ndarray, text: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of ``[n, D]`` audio and ``[n, D]`` text embeddings (the CLAP score per clip)."""
    a, t = np.asarray(audio, dtype=np.float64), np.asarray(text, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    t = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    return (a * t).sum(axis=1)


def kl_divergence(reference_probs: np.ndarray, generated_probs: np.ndarray) -> np.ndarray:
    """Per pair ``KL(p_ref || p_gen)`` over label distributions ``[n, labels]``, as audiocraft's `kld`.

    audiocraft computes ``F.kl_div((p_gen + 1e-6).log(), p_ref).sum(-1)``, i.e.
    ``sum p_ref (log p_ref - log(p_gen + 1e-6))``, with 0 log 0 = 0.
    """
    p = np.asarray(reference_probs, dtype=np.float64)
    q = np.asarray(generated_probs, dtype=np.float64)
    if p.shape != q.shape:
        raise UsageError(f"label distributions differ in shape: {p.shape} vs {q.shape}")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(np.where(p > 0, p, 1.0)) - np.log(q + KL_EPSILON)), 0.0)
    return terms.sum(axis=-1)
