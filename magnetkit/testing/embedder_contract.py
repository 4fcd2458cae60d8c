"""The embedder contract suite: shapes, dtypes, determinism, independence from batch and padding."""

from __future__ import annotations

import torch

from magnetkit.interfaces import Embedder
from magnetkit.testing.checks import expect


def check_embedder(embedder, seconds: float = 1.5, texts: tuple[str, ...] = ("happy rock", "a sad slow piano"),
                   atol: float = 1e-4) -> None:
    """Raise AssertionError where ``embedder`` breaks the `magnetkit.Embedder` contract."""
    expect(isinstance(embedder, Embedder), "an embedder has every attribute and method of magnetkit.Embedder")
    for name in ("sample_rate", "channels", "dim"):
        value = getattr(embedder, name, None)
        expect(isinstance(value, int) and value > 0, f"{name} must be a positive int, got {value!r}")
    expect(isinstance(getattr(embedder, "per_frame", None), bool), "per_frame must be a bool")
    expect(isinstance(getattr(embedder, "cache_key", None), str), "cache_key must be a str")
    expect(embedder.to("cpu") is embedder, "to(device) must return the embedder itself")
    sr, C = embedder.sample_rate, embedder.channels
    gen = torch.Generator().manual_seed(0)
    long, short = int(seconds * sr), int(seconds * sr * 0.6)
    wav = 0.3 * torch.randn(2, C, long, generator=gen)
    wav[1, :, short:] = 0  # padding
    out = embedder.embed_audio(wav, [long, short])
    expect(isinstance(out, list) and len(out) == 2, "embed_audio returns one tensor per clip")
    for vectors in out:
        expect(isinstance(vectors, torch.Tensor) and vectors.dtype == torch.float32, "vectors are float32 tensors")
        expect(vectors.device.type == "cpu", "vectors are returned on the CPU")
        expect(vectors.dim() == 2 and vectors.shape[1] == embedder.dim and vectors.shape[0] >= 1,
            f"each clip gives [n, {embedder.dim}] vectors, got {tuple(vectors.shape)}")
        expect(torch.isfinite(vectors).all(), "vectors must be finite")
        if not embedder.per_frame:
            expect(vectors.shape[0] == 1, "a per-clip embedder gives one vector per clip")
    again = embedder.embed_audio(wav, [long, short])
    expect(all(torch.equal(a, b) for a, b in zip(out, again)), "embedding must be deterministic")
    alone = embedder.embed_audio(wav[1:, :, :short], [short])[0]
    expect(alone.shape == out[1].shape and torch.allclose(alone, out[1], atol=atol),
        "a clip's vectors must not depend on its padding or on the other clips of the batch")
    expect(not torch.allclose(out[0][:1], out[1][:1], atol=atol) or out[0].shape != out[1].shape,
        "different clips should give different vectors")
    default = embedder.embed_audio(wav[:1])
    expect(torch.allclose(default[0], out[0], atol=atol), "lengths=None means every clip is S samples long")
    if getattr(embedder, "label_probs", False):
        for vectors in out:
            expect((vectors >= 0).all() and torch.allclose(vectors.sum(-1), torch.ones(vectors.shape[0]), atol=1e-4),
                "label probabilities are non-negative and sum to 1")
    if hasattr(embedder, "embed_text"):
        text = embedder.embed_text(list(texts))
        expect(isinstance(text, torch.Tensor) and tuple(text.shape) == (len(texts), embedder.dim),
            f"embed_text gives [B, {embedder.dim}], got {tuple(getattr(text, 'shape', ()))}")
        expect(torch.isfinite(text).all(), "text embeddings must be finite")
