"""Fitting a `SpecCodec`: residual k-means over token features of a set of audio files."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from magnetkit import UsageError
from magnetkit_speccodec.codec import SpecCodec, nearest, token_features
from magnetkit_speccodec.config import FitConfig


def kmeans(data: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """``k`` centroids of ``data`` [N, D]: k-means++ seeding on a sample, then Lloyd iterations.

    An empty cluster is re-seeded with the point worst served by the current centroids, so every
    code stays in use.
    """
    n = data.shape[0]
    if n < k:
        raise UsageError(f"k-means needs at least {k} vectors, got {n}: give more (or longer) clips")
    sample = data[torch.randperm(n, generator=generator)[: min(n, 20 * k)]]
    chosen = [int(torch.randint(len(sample), (1,), generator=generator))]
    dist = ((sample - sample[chosen[0]]) ** 2).sum(1)
    for _ in range(1, k):  # k-means++ (Arthur & Vassilvitskii 2007): far points are likelier seeds
        pick = int(torch.multinomial(dist / dist.sum() if dist.sum() > 0 else torch.ones_like(dist), 1,
                                     generator=generator))
        chosen.append(pick)
        dist = torch.minimum(dist, ((sample - sample[pick]) ** 2).sum(1))
    centroids = sample[chosen].clone()
    for _ in range(iters):
        assign = nearest(data, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assign, data)
        counts = torch.bincount(assign, minlength=k)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centroids)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            error = ((data - centroids[nearest(data, centroids)]) ** 2).sum(1)
            centroids[empty] = data[error.topk(len(empty)).indices]
    return centroids


def collect_features(source: str | Path, config: FitConfig,
                     progress: Callable[[int, int], None] | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Shape vectors [N, D] and log gains [N, P] of ``tokens_per_clip`` random tokens per file, and the file count."""
    from magnetkit import read_audio, read_items

    items = read_items(source)[: config.max_clips]
    generator = torch.Generator().manual_seed(config.seed)
    shapes, gains = [], []
    for i, item in enumerate(items):
        wav, _ = read_audio(item.path, sample_rate=config.params.sample_rate, channels=1)
        shape, log_gain = token_features(wav, config.params)
        keep = torch.randperm(shape.shape[1], generator=generator)[: config.tokens_per_clip]
        shapes.append(shape[0, keep])
        gains.append(log_gain[0, keep])
        if progress:
            progress(i + 1, len(items))
    return torch.cat(shapes), torch.cat(gains), len(items)


def fit_codec(source: str | Path, out: str | Path | None = None, config: FitConfig | None = None,
              progress: Callable[[str], None] | None = None) -> SpecCodec:
    """Fit a speccodec on audio files and (optionally) save it.

    Args:
        source: a manifest (``manifest.jsonl``), a folder holding one, or a folder of audio files.
        out: folder to write speccodec.json + speccodec.safetensors into; None = do not save.
        config: representation and k-means budget (defaults: 3 shape levels + gain, 512 codes each).
        progress: called with a one-line message at each phase.

    Returns:
        The fitted codec.

    Raises:
        UsageError: the source lists nothing, or too few tokens for the codebook size.
        AudioError: a listed file cannot be read.
    """
    config = config or FitConfig()
    say = progress or (lambda message: None)
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(config.seed)
    shapes, gains, clips = collect_features(source, config)
    say(f"{clips} clips -> {len(shapes)} tokens ({time.perf_counter() - start:.0f} s)")
    books, residual = [], shapes
    rms = []
    for level in range(config.params.shape_levels):
        book = kmeans(residual, config.params.cardinality, config.kmeans_iters, generator)
        residual = residual - book[nearest(residual, book)]
        books.append(book)
        rms.append(float(residual.pow(2).mean().sqrt()))
        say(f"shape level {level}: residual rms {rms[-1]:.3f} ({time.perf_counter() - start:.0f} s)")
    gain_book = kmeans(gains, config.params.cardinality, config.kmeans_iters, generator)
    info = {
        "source": str(source), "clips": clips, "tokens": len(shapes), "seconds": round(time.perf_counter() - start, 1),
        "tokens_per_clip": config.tokens_per_clip, "kmeans_iters": config.kmeans_iters, "seed": config.seed,
        "shape_residual_rms": [round(r, 4) for r in rms], "threads": torch.get_num_threads(),
    }
    codec = SpecCodec(config.params, books, gain_book, fit_info=info)
    if out is not None:
        codec.save(out)
    say(f"fitted in {info['seconds']:.0f} s" + (f"; saved to {out}" if out is not None else ""))
    return codec
